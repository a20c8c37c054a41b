#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: tls
short_description: Ensure the TLS set dockerd serves on a camera or an acap-http host
version_added: 0.1.0
description:
  - Ensures the device stores the given CA certificate, server certificate and server key (files or content
    on the controller) for dockerd's C(--tlsverify).
  - On acap-http the module compares SHA-256 fingerprints with the device's summary (C(GET /local/dockerdwrapper/tls)),
    and only when a file differs uploads the three as one set, in one request, which restarts dockerd once (its
    containers keep running). A re-run with the same files changes nothing and restarts nothing.
  - A camera running Docker ACAP has no summary, so nothing can be compared there. The module then uploads the
    three files one by one, as the camera's manual says, and always reports changed.
  - A set dockerd would refuse (a key that is not the certificate's) fails the task; the device keeps serving
    with the files it started with.
  - With O(wait_timeout), the task then waits until dockerd runs (Status 0), as the M(acap_http.dockerdwrapper.status)
    module would; with O(docker_host) too, until dockerd serves the certificate given over mutual TLS, and proves
    it with the docker API. All in the same task, so a rotation needs one module run a host instead of three.
author: acap-http developers (@acap-http)
extends_documentation_fragment:
  - acap_http.dockerdwrapper.front
options:
  ca:
    description: Path of the CA certificate (C(ca.pem); several certificates may be bundled).
    type: path
  cert:
    description: Path of the server certificate (C(server-cert.pem)).
    type: path
  key:
    description: Path of the server key (C(server-key.pem)), unencrypted.
    type: path
  ca_content:
    description: The CA certificate as PEM text, instead of O(ca).
    type: str
  cert_content:
    description: The server certificate as PEM text, instead of O(cert).
    type: str
  key_content:
    description: The server key as PEM text, instead of O(key).
    type: str
  wait_timeout:
    description:
      - Seconds to wait, once the set is in place (sent or already stored), until dockerd runs (Status C(0)); C(0)
        does not wait. The task fails as the M(acap_http.dockerdwrapper.status) module does when that time is up or
        the application is stopped.
      - After an upload that restarts dockerd, a Status C(0) counts once the restart was seen (another Status), or
        3 seconds after the upload, since the device answers the upload before the old dockerd stops.
      - Check mode does not wait.
    type: float
    default: 0
  docker_host:
    description:
      - The docker API of the device, C(tcp://HOST:2376). Given, the task proves the set once it is in place.
        Over mutual TLS with O(client_cert) and O(client_key), the server verified against the CA given and
        O(tls_hostname), it waits (up to O(wait_timeout)) until dockerd serves the certificate given, and
        asks C(GET /version); then for Status C(0). It fails if dockerd serves another certificate by then,
        refuses the pair, or answers no docker API. Check mode does not prove.
    type: str
  client_cert:
    description: Path of the operator's client certificate for O(docker_host).
    type: path
  client_key:
    description: Path of the operator's client key for O(docker_host).
    type: path
  tls_hostname:
    description: The name (or address) the server certificate must have; the host of O(docker_host) by default.
    type: str
requirements:
  - cryptography (on the controller, to fingerprint the key)
attributes:
  check_mode:
    support: full
    description: Compares and reports; uploads nothing.
  diff_mode:
    support: full
    description: Shows the fingerprints stored before and after.
"""

EXAMPLES = r"""
- name: The host's TLS set
  acap_http.dockerdwrapper.tls:
    url: http://192.0.2.10
    password: "{{ camera_password }}"
    ca: pki/ca.pem
    cert: "pki/{{ inventory_hostname }}-cert.pem"
    key: "pki/{{ inventory_hostname }}-key.pem"

- name: The same, waiting until dockerd serves it, proved over mutual TLS with the operator's pair
  acap_http.dockerdwrapper.tls:
    url: http://192.0.2.10
    password: "{{ camera_password }}"
    ca: pki/ca.pem
    cert: "pki/{{ inventory_hostname }}-cert.pem"
    key: "pki/{{ inventory_hostname }}-key.pem"
    wait_timeout: 120
    docker_host: tcp://192.0.2.10:2376
    client_cert: pki/client-cert.pem
    client_key: pki/client-key.pem
"""

RETURN = r"""
sent:
  description: The files that differed and were (or, in check mode, would be) sent.
  returned: always
  type: list
  elements: str
compared:
  description: Whether the device could be compared (false on a camera, which has no summary).
  returned: always
  type: bool
restart:
  description: The device's X-Dockerd-Restart answer, if any (C(unchanged), or why dockerd was not restarted).
  returned: always
  type: str
previous:
  description: Fingerprints of the set stored before (null on a camera).
  returned: always
  type: dict
current:
  description: Fingerprints of the set given.
  returned: always
  type: dict
status:
  description: The Status reached, as C(code) and C(text), when the task waited (O(wait_timeout)).
  returned: when waited
  type: dict
  sample: {"code": 0, "text": "RUNNING"}
waited:
  description: Seconds waited for that Status.
  returned: when waited
  type: float
docker:
  description: What C(GET /version) answered over mutual TLS, once dockerd served the certificate given.
  returned: when proved (O(docker_host))
  type: dict
  sample: {"Version": "27.5.1", "ApiVersion": "1.47"}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import (
    FRONT_ARGS,
    FrontError,
    HAS_CRYPTOGRAPHY,
    files_to_send,
    local_identity,
    open_front,
    stored_identity,
    wait_for_status,
)
from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.docker_tls import (
    DockerTlsError,
    client_context,
    wait_until_served,
)

SOURCES = (("ca.pem", "ca"), ("server-cert.pem", "cert"), ("server-key.pem", "key"))


def read_files(module):
    files = {}
    for name, option in SOURCES:
        content = module.params[option + "_content"]
        if content is not None:
            files[name] = to_bytes(content)
            continue
        try:
            with open(module.params[option], "rb") as source:
                files[name] = source.read()
        except (IOError, OSError) as err:
            module.fail_json(msg="cannot read %s: %s" % (module.params[option], err))
    return files


def main():
    """Compare, send what differs, then (as asked) wait and prove."""
    spec = dict(FRONT_ARGS)
    for dummy, option in SOURCES:
        spec[option] = dict(type="path")
        spec[option + "_content"] = dict(type="str", no_log=option == "key")
    spec.update(
        wait_timeout=dict(type="float", default=0),
        docker_host=dict(type="str"),
        client_cert=dict(type="path"),
        client_key=dict(type="path"),
        tls_hostname=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[(option, option + "_content") for dummy, option in SOURCES],
        required_one_of=[(option, option + "_content") for dummy, option in SOURCES],
        required_by={"docker_host": ("client_cert", "client_key")},
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    files = read_files(module)
    try:
        local = local_identity(files)
    except ValueError as err:
        module.fail_json(msg="the files given are not a readable set: %s" % err)
    front = open_front(module)
    try:
        summary = front.tls_summary()
        previous = stored_identity(summary) if summary is not None else None
        sent = files_to_send(previous, local)
        restart = ""
        if sent and not module.check_mode:
            restart = front.upload(files) if summary is not None else front.upload_each(files)
    except FrontError as err:
        module.fail_json(msg=str(err))
    if restart.startswith("refused"):
        module.fail_json(msg="dockerd would refuse this set, so it keeps the files it started with: " + restart)
    changed = bool(sent) and restart != "unchanged"
    result = dict(
        changed=changed,
        sent=sent,
        compared=summary is not None,
        restart=restart,
        previous=previous,
        current=local,
        diff=dict(before=previous or {}, after=local),
    )
    if not module.check_mode:
        # No restart header: the upload restarts dockerd (unchanged, reloaded, refused: it does not).
        wait_and_prove(module, front, files, result, restart_due=changed and not restart)
    module.exit_json(**result)


def wait_and_prove(module, front, files, result, restart_due):
    """With docker_host, wait until dockerd serves the certificate given and answers the docker API over
    mutual TLS; with wait_timeout, until Status is 0 (at once, after that proof). Fails the module,
    saying which did not come and the Status then."""
    params = module.params
    if params["docker_host"]:
        try:
            context = client_context(files["ca.pem"], params["client_cert"], params["client_key"])
        except DockerTlsError as err:
            module.fail_json(msg=str(err), **result)
        result["docker"], failure = wait_until_served(
            result["current"]["server-cert.pem"][0], params["wait_timeout"], params["docker_host"], context,
            params["tls_hostname"],
        )  # fmt: skip
        if failure:
            found, dummy = wait_for_status(front, [0], 0)
            module.fail_json(msg="the set is in place, but not proved over mutual TLS: %s (Status %s %s)"
                             % (failure, found["status"]["code"], found["status"]["text"]), **result)  # fmt: skip
        restart_due = False  # the certificate served is the new dockerd's
    if params["wait_timeout"] > 0:
        found, failure = wait_for_status(front, [0], params["wait_timeout"], restart_due=restart_due)
        result.update(status=found["status"], waited=found["waited"])
        if failure:
            module.fail_json(msg="the set is in place, but dockerd does not run: " + failure, **result)


if __name__ == "__main__":
    main()
