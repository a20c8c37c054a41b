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
  - Reads the C(Status) parameter every second until its code is one of O(codes), or fails at O(timeout)
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import FRONT_ARGS, HINTS, FrontError, open_front


def main():
    module = AnsibleModule(
        argument_spec=dict(
            FRONT_ARGS,
            codes=dict(type="list", elements="int", default=[0]),
            wait_timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    front = open_front(module)
    began = time.monotonic()
    code, text, application = None, "", None
    while True:
        try:
            code, text = front.status()
            application = front.application()
        except FrontError as err:
            text = str(err)  # a restarting front: ask again until the time is up
        waited = round(time.monotonic() - began, 1)
        found = dict(status=dict(code=code, text=text), hint=HINTS.get(code, ""), application=application, waited=waited)
        if code in module.params["codes"]:
            module.exit_json(changed=False, **found)
        if application == "Stopped" and -1 not in module.params["codes"]:
            module.fail_json(msg="the application is stopped (Status %s %s): start it (the app module)" % (code, text),
                             **found)  # fmt: skip
        if waited >= module.params["wait_timeout"]:
            shown = "%s %s" % (code, text) if code is not None else text
            module.fail_json(
                msg="Status is %s after %.0f s, not one of %s: %s"
                % (shown, waited, module.params["codes"], HINTS.get(code, "see the application log")),
                **found
            )
        time.sleep(1)


if __name__ == "__main__":
    main()
