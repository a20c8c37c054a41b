#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: status
short_description: Wait until Docker ACAP's Status is one of the given codes
version_added: 0.1.0
description:
  - Reads the C(Status) parameter every 0.2 seconds until its code is one of O(codes), or fails at O(timeout)
    with the Status text and what it means.
  - Reads the application's state too (C(/axis-cgi/applications/list.cgi), as an admin may). A stopped application
    fails at once unless C(-1) is awaited, as it will not start by itself.
  - Changes nothing.
author: acap-http developers (@acap-http)
extends_documentation_fragment:
  - acap_http.dockerdwrapper.front
options:
  codes:
    description:
      - The Status codes to wait for; C(0) is RUNNING.
    type: list
    elements: int
    default: [0]
  wait_timeout:
    description:
      - Seconds to wait in all.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
"""

EXAMPLES = r"""
- name: dockerd answers
  acap_http.dockerdwrapper.status:
    url: http://192.0.2.10
    password: "{{ camera_password }}"
    codes: [0]
    wait_timeout: 120
"""

RETURN = r"""
status:
  description: The Status reached, as C(code) and C(text).
  returned: always
  type: dict
  sample: {"code": 0, "text": "RUNNING"}
hint:
  description: What that Status means and what to do.
  returned: always
  type: str
application:
  description: The application's state in list.cgi (C(Running), C(Stopped)); null where the user may not read it.
  returned: always
  type: str
  sample: Running
waited:
  description: Seconds waited.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import FRONT_ARGS, open_front, wait_for_status


def main():
    module = AnsibleModule(
        argument_spec=dict(
            FRONT_ARGS,
            codes=dict(type="list", elements="int", default=[0]),
            wait_timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    found, failure = wait_for_status(open_front(module), module.params["codes"], module.params["wait_timeout"])
    if failure:
        module.fail_json(msg=failure, **found)
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
