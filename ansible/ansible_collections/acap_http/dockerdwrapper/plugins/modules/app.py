#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations

DOCUMENTATION = r"""
module: app
short_description: Start, stop or restart the Docker ACAP application
version_added: 0.2.0
description:
  - Reads the application's state with the VAPIX application API (C(/axis-cgi/applications/list.cgi)) and
    starts, stops or restarts it with C(/axis-cgi/applications/control.cgi), on a camera and on acap-http
    alike. Stopping it stops its containers, dockerd and everything under it; its settings stay, and can be
    changed meanwhile.
  - O(state=started) and O(state=stopped) change nothing where the application already is so; O(state=restarted)
    always restarts it.
  - Needs an admin user, as the application API does.
author: acap-http developers (@acap-http)
extends_documentation_fragment:
  - acap_http.dockerdwrapper.front
options:
  state:
    description:
      - What the application should be.
    type: str
    choices: [started, stopped, restarted]
    required: true
  wait_timeout:
    description:
      - Seconds to wait for list.cgi to say C(Running) after a start or restart (C(Stopped) after a stop).
    type: float
    default: 120
attributes:
  check_mode:
    support: full
    description: Says whether it would start or stop the application, and does not.
  diff_mode:
    support: full
    description: The application's state before and after.
"""

EXAMPLES = r"""
- name: The script for a camera, unchanged on acap-http
  module_defaults:
    group/acap_http.dockerdwrapper.all:
      url: "http://{{ inventory_hostname }}"
      password: "{{ camera_password }}"
  block:
    - name: Stop the application
      acap_http.dockerdwrapper.app:
        state: stopped
    - name: Plain TCP
      acap_http.dockerdwrapper.param:
        settings:
          UseTLS: false
    - name: Start it again, and wait for it to run
      acap_http.dockerdwrapper.app:
        state: started
"""

RETURN = r"""
application:
  description: The application's state in list.cgi afterwards (C(Running), C(Stopped)); in check mode, what it
    would be.
  returned: always
  type: str
  sample: Running
before:
  description: Its state before.
  returned: always
  type: str
  sample: Stopped
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils.vapix import FRONT_ARGS, FrontError, open_front

WANTED = {"started": "Running", "stopped": "Stopped", "restarted": "Running"}
ACTION = {"started": "start", "stopped": "stop", "restarted": "restart"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            FRONT_ARGS,
            state=dict(type="str", required=True, choices=list(WANTED)),
            wait_timeout=dict(type="float", default=120),
        ),
        supports_check_mode=True,
    )
    front = open_front(module)
    state = module.params["state"]
    wanted = WANTED[state]
    try:
        before = front.application()
    except FrontError as err:
        module.fail_json(msg=str(err))
    if before is None:
        module.fail_json(msg="the application API at %s does not list the application: is the user an admin, "
                             "and is it installed?" % front.url)  # fmt: skip
    changed = state == "restarted" or before != wanted
    diff = dict(before="application: %s\n" % before, after="application: %s\n" % wanted)
    if not changed or module.check_mode:
        module.exit_json(changed=changed, application=wanted if changed else before, before=before, diff=diff)
    began = time.monotonic()
    now = before
    try:
        front.control(ACTION[state])
        while now != wanted and time.monotonic() - began < module.params["wait_timeout"]:
            time.sleep(0.5)
            now = front.application()
    except FrontError as err:
        module.fail_json(msg=str(err), before=before)
    if now != wanted:
        module.fail_json(msg="the application is %s %.0f s after the %s, not %s"
                             % (now, time.monotonic() - began, ACTION[state], wanted), before=before)  # fmt: skip
    module.exit_json(changed=True, application=now, before=before, diff=diff)


if __name__ == "__main__":
    main()
