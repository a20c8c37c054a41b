#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: pki
short_description: Keep a fleet's dockerd CA, the operator's client pair and every host's server pair
version_added: 0.3.0
description:
  - Keeps, in one directory of the controller, what the TLS sets of a fleet are made of, in one process
    for the whole fleet (run it once, on the controller, before the hosts are rotated).
  - The CA (C(ca.pem), C(ca-key.pem)) is made when C(ca.pem) is missing, and kept otherwise.
  - The operator's client pair (C(client-cert.pem), C(client-key.pem), clientAuth) and each host's server pair
    (C(NAME-cert.pem), C(NAME-key.pem), serverAuth, the host's addresses in the SANs) are issued when the
    certificate is missing, expires within O(renew_before) days, was not issued by the CA, is not its key's or
    names other addresses. A key is kept when it is there; only a missing one is made.
  - Keys are ECDSA P-256, certificates signed with SHA-256.
author: acap-http developers (@acap-http)
options:
  path:
    description: The directory of the PKI on the controller (made, C(0700), when missing).
    type: path
    required: true
  servers:
    description:
      - The hosts to keep a server pair for, each name with its addresses and DNS names for the SANs
        (IP addresses become IP names, anything else DNS names). An empty list names the host itself.
    type: dict
    default: {}
  renew_before:
    description: Issue a certificate again when it expires within this many days (C(0) only an expired one).
    type: int
    default: 30
  validity:
    description: Days a newly issued client or server certificate is valid.
    type: int
    default: 90
  ca_validity:
    description: Days the CA is valid when it is made.
    type: int
    default: 3650
  ca_name:
    description: The CA's common name when it is made.
    type: str
    default: acap-http fleet CA
requirements:
  - cryptography
attributes:
  check_mode:
    support: full
    description: Says what it would make and issue; writes nothing.
  diff_mode:
    support: none
    description: Keys are not shown; RV(issued) says what is issued and why.
"""

EXAMPLES = r"""
- name: The CA, the client pair and every host's server pair, once for the fleet
  acap_http.dockerdwrapper.pki:
    path: "{{ inventory_dir }}/pki"
    servers: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
                  | map(attribute='acap_http_addresses', default=[]))) }}"
    renew_before: 30
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
ca_made:
  description: Whether the CA was (or, in check mode, would be) made.
  returned: always
  type: bool
issued:
  description: The pairs issued (or that would be), by name (C(client) or a host's), with the reason.
  returned: always
  type: dict
  sample: {"acap1": "expires 2026-12-01, within 30 days", "acap2": "missing"}
kept:
  description: The names whose pair was kept as it is.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils import pki


class Keeper:
    """What one run does to the directory: reads, decides, and (unless in check mode) writes."""

    def __init__(self, module):
        self.module = module
        self.directory = module.params["path"]
        self.write = not module.check_mode
        self.at = pki.now()

    def _save(self, name, certificate, key, new_key):
        if not self.write:
            return
        certificate_path, key_path = pki.paths(self.directory, name)
        try:
            if new_key:
                pki.write_file(key_path, pki.key_pem(key), 0o600)
            pki.write_file(certificate_path, pki.certificate_pem(certificate), 0o644)
        except (IOError, OSError) as err:
            self.module.fail_json(msg="cannot write %s's pair in %s: %s" % (name, self.directory, err))

    def ca(self):
        """The CA (certificate, key) and whether it was made now."""
        certificate_path, key_path = pki.paths(self.directory, pki.CA_NAME)
        if not os.path.exists(certificate_path):
            key = pki.new_key()
            certificate = pki.make_ca(key, self.module.params["ca_name"], self.module.params["ca_validity"], self.at)
            self._save(pki.CA_NAME, certificate, key, True)
            return certificate, key, True
        certificate, key = pki.load_certificate(certificate_path), pki.load_key(key_path)
        if certificate is None or key is None:
            self.module.fail_json(
                msg="the CA in %s cannot be used: %s or %s is unreadable or missing (remove both to make a new CA, "
                "which every host then needs)" % (self.directory, certificate_path, key_path)
            )
        return certificate, key, False

    def pair(self, name, sans, server, ca):
        """Issue ``name``'s pair when it must be; the reason, or None when it is kept."""
        certificate_path, key_path = pki.paths(self.directory, name)
        certificate, key = pki.load_certificate(certificate_path), pki.load_key(key_path)
        params = self.module.params
        reason = pki.reason_to_issue(certificate, key, ca[0], sans, params["renew_before"], self.at)
        if reason is None:
            return None
        new_key = key is None
        key = key or pki.new_key()
        issued = pki.issue(ca[0], ca[1], key, name, sans, server, params["validity"], self.at)
        self._save(name, issued, key, new_key)
        return reason


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            servers=dict(type="dict", default={}),
            renew_before=dict(type="int", default=30),
            validity=dict(type="int", default=90),
            ca_validity=dict(type="int", default=3650),
            ca_name=dict(type="str", default="acap-http fleet CA"),
        ),
        supports_check_mode=True,
    )
    if not pki.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    servers = module.params["servers"]
    if pki.CLIENT_NAME in servers or pki.CA_NAME in servers:
        module.fail_json(msg="a host may not be called %s or %s: their files are the CA's and the client's"
                         % (pki.CA_NAME, pki.CLIENT_NAME))  # fmt: skip
    keeper = Keeper(module)
    if keeper.write and not os.path.isdir(keeper.directory):
        os.makedirs(keeper.directory, 0o700)
    ca = keeper.ca()
    wanted = [(pki.CLIENT_NAME, [], False)]
    wanted += [(name, [str(san) for san in (sans or [name])], True) for name, sans in sorted(servers.items())]
    issued, kept = {}, []
    for name, sans, server in wanted:
        reason = keeper.pair(name, sans, server, ca)
        if reason is None:
            kept.append(name)
        else:
            issued[name] = reason
    module.exit_json(changed=ca[2] or bool(issued), ca_made=ca[2], issued=issued, kept=kept)


if __name__ == "__main__":
    main()
