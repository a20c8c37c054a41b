#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: info
short_description: Docker ACAP's settings, Status and TLS set, for reports and conditions
version_added: 0.1.0
description:
  - Lists the settings and Status through C(/axis-cgi/param.cgi), the application's state through
    C(/axis-cgi/applications/list.cgi) (an admin's), and on acap-http reads the summary of the stored TLS set
    (a camera has none to give).
author: acap-http developers (@acap-http)
extends_documentation_fragment:
  - acap_http.dockerdwrapper.front
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
"""

EXAMPLES = r"""
- name: Read the device
  acap_http.dockerdwrapper.info:
    url: http://192.0.2.10
    password: "{{ camera_password }}"
  register: device

- name: Rotate soon
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} expires in {{ device.days_left['server-cert.pem'] }} days"
  when: device.tls is not none and device.days_left['server-cert.pem'] < 30
"""

RETURN = r"""
settings:
  description: Every setting by name, as param.cgi lists them (Status included).
  returned: always
  type: dict
status:
  description: Status as C(code) and C(text).
  returned: always
  type: dict
  sample: {"code": 0, "text": "RUNNING"}
application:
  description: The application's state in list.cgi (C(Running), C(Stopped)); null where the user may not read it
    (below admin).
  returned: always
  type: str
  sample: Running
tls:
  description: The stored TLS set as C(GET /local/dockerdwrapper/tls) describes it (no key material);
    null on a camera, which has no such summary, and while the application is stopped.
  returned: always
  type: dict
days_left:
  description: Days until the certificates of C(ca.pem) and C(server-cert.pem) expire (the earliest of a bundle).
  returned: always
  type: dict
  sample: {"ca.pem": 364, "server-cert.pem": 89}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import (
    FRONT_ARGS,
    FrontError,
    days_left,
    open_front,
    parse_status,
)


def main():
    module = AnsibleModule(argument_spec=dict(FRONT_ARGS), supports_check_mode=True)
    front = open_front(module)
    try:
        settings = front.settings()
        application = front.application()
        summary = front.tls_summary()
    except FrontError as err:
        module.fail_json(msg=str(err))
    code, text = parse_status(settings.get("Status", ""))
    module.exit_json(
        changed=False,
        settings=settings,
        status=dict(code=code, text=text),
        application=application,
        tls=summary,
        days_left=days_left(summary) if summary else {},
    )


if __name__ == "__main__":
    main()
