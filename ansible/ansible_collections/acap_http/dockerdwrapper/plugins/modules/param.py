#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: param
short_description: Ensure Docker ACAP settings on a camera or an acap-http host
version_added: 0.1.0
description:
  - Lists the settings through C(/axis-cgi/param.cgi) first, then updates only those that differ, in one
    request (which restarts dockerd once; on acap-http its containers keep running).
  - A value the device refuses fails the task, and the device applies nothing of the request.
author: acap-http developers (@acap-http)
extends_documentation_fragment:
  - acap_http.dockerdwrapper.front
options:
  settings:
    description:
      - The settings by name, for example C(UseTLS), C(TCPSocket), C(IPCSocket), C(SDCardSupport),
        C(DockerdLogLevel), C(ApplicationLogLevel). Booleans may be given as YAML booleans.
      - C(Status) is the device's, and cannot be set.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Lists, and reports what would change, without updating.
  diff_mode:
    support: full
    description: Shows the settings before and after.
"""

EXAMPLES = r"""
- name: TLS on TCP, no unix socket
  acap_http.dockerdwrapper.param:
    url: http://192.0.2.10
    password: "{{ camera_password }}"
    settings:
      UseTLS: yes
      TCPSocket: yes
      IPCSocket: no
"""

RETURN = r"""
previous:
  description: The settings before, as param.cgi lists them (Status included).
  returned: always
  type: dict
current:
  description: The settings after.
  returned: always
  type: dict
changes:
  description: What was (or, in check mode, would be) updated.
  returned: always
  type: dict
status:
  description: Status after the task, as C(code) and C(text).
  returned: always
  type: dict
  sample: {"code": 0, "text": "RUNNING"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import (
    FRONT_ARGS,
    FrontError,
    open_front,
    parse_status,
    settings_to_change,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(FRONT_ARGS, settings=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    front = open_front(module)
    try:
        previous = front.settings()
        changes = settings_to_change(previous, module.params["settings"])
        if "Status" in changes:
            module.fail_json(msg="Status is the device's own: it cannot be set")
        if changes and not module.check_mode:
            front.update(changes)
            current = front.settings()
        else:
            current = dict(previous, **changes)
    except FrontError as err:
        module.fail_json(msg=str(err))
    code, text = parse_status(current.get("Status", ""))
    shown = dict((name, value) for name, value in previous.items() if name != "Status")
    module.exit_json(
        changed=bool(changes),
        previous=previous,
        current=current,
        changes=changes,
        status=dict(code=code, text=text),
        diff=dict(before=shown, after=dict(shown, **changes)),
    )


if __name__ == "__main__":
    main()
