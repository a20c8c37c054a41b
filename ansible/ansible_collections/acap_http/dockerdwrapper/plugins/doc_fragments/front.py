# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)

from __future__ import annotations


class ModuleDocFragment:
    """The options every module of the collection takes to reach a camera or an acap-http host."""

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the device's web front, for example C(http://192.0.2.10) for a camera or
        C(https://edge1.example:8443) for an acap-http host.
    type: str
    required: true
  user:
    description:
      - A user of the device with the admin access level (listing needs only viewer).
    type: str
    default: admin
  password:
    description:
      - That user's password. The front authenticates with HTTP digest (a camera, C(acap-http up)) or basic
        over TLS (C(acap-http serve)); see O(auth).
    type: str
    required: true
  auth:
    description:
      - How to authenticate. C(digest) answers only a Digest challenge (a camera, C(acap-http up)); C(basic)
        sends Basic at once and needs an C(https) URL (C(acap-http serve)); C(auto) answers Digest anywhere
        and Basic only over C(https) with the certificate verified.
      - Credentials are never taken from C(~/.netrc), and redirects are not followed.
      - Basic is never sent over plain C(http), where the password would travel in clear to whoever
        answers, a server that only pretends to be the device included.
    type: str
    choices: [auto, digest, basic]
    default: auto
  validate_certs:
    description:
      - Whether to verify the certificate of an HTTPS front.
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle to verify an HTTPS front with (for example the fingerprint-pinned certificate of
        C(acap-http serve)).
    type: path
  timeout:
    description:
      - Seconds to wait for one answer of the front.
    type: float
    default: 30
notes:
  - "The modules talk to the device over HTTP from the controller: run them with C(connection: local)
    (the inventory that C(make fleet) writes does)."
  - "All modules form the action group C(group/acap_http.dockerdwrapper.all), so a play sets C(url), C(user)
    and C(password) once with C(module_defaults)."
"""
