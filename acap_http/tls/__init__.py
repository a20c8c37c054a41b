"""Everything about dockerd's TLS files, in the order a file meets it:

- ``files``: the three files, what each must hold, and their names;
- ``uploads``: one upload checked (PEM, the key rules dockerd's Go applies), no key material kept;
- ``certificates``: reading certificates in full (SANs, fingerprints, key shapes, the key rule table);
- ``judging``: a set judged as dockerd would (would it start with them?) and summarised;
- ``verdicts``: that judgement kept by content (bounded), in a child while cryptography is not loaded;
- ``store``: the files as one service: validate, store if changed, judge, summarise;
- ``making`` and ``commands``: making certificates, and ``acap-http certs``.
"""
