"""The TLS context of the API's front, made from the three stored files as dockerd's
``--tlsverify`` would use them (docker/go-connections' server defaults, which changed with it):

- TLS 1.2 or 1.3, nothing older;
- TLS 1.2 suites: ECDHE key exchange with AES-GCM and, as dockerd 20.10 and 26.1 have it
  (measured, ``tests/e2e/test_tls_acceptance.py``), with AES-CBC and SHA-1; go-connections 0.6
  (May 2025) dropped those, so for a dockerd of 28 or later (assumed to be built with it: not
  measured here) AES-GCM alone; never
  a static RSA key exchange, never ChaCha20 (no dockerd measured here takes it); TLS 1.3's
  three suites, as Go has them;
- a client certificate required, verified against ``ca.pem`` alone (not the host's CAs), within
  its validity; no renegotiation (Go's server has none);
- no session tickets (Go's server sends one, and docker's clients never use it).

The certificate and key go to OpenSSL through anonymous memory files: they are never written
anywhere but the store.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator, Mapping

from acap_http.supervisor import versions
from acap_http.tls.files import CA, SERVER_CERT, SERVER_KEY

# OpenSSL's names of Go's suites, ECDSA and RSA certificates alike.
GCM = ":".join(
    f"ECDHE-{key}-AES{bits}-GCM-SHA{sha}" for key in ("ECDSA", "RSA") for bits, sha in ((256, 384), (128, 256))
)
CBC = ":".join(f"ECDHE-{key}-AES{bits}-SHA" for key in ("ECDSA", "RSA") for bits in (256, 128))
NO_CBC: versions.Version = (28,)  # the first dockerd with go-connections 0.6


def tls12_suites(dockerd: versions.Version) -> str:
    """The TLS 1.2 suites the dockerd of ``dockerd``'s version takes (an unknown one: as Debian's)."""
    return GCM if dockerd >= NO_CBC else f"{GCM}:{CBC}"


def server_context(files: Mapping[str, bytes], dockerd: versions.Version = versions.UNKNOWN) -> ssl.SSLContext:
    """A context that serves ``files`` (the TLS set as stored) as the dockerd of version ``dockerd``
    would; ssl.SSLError or ValueError when they do not make one (a key that is not the
    certificate's, say)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(tls12_suites(dockerd))
    context.options |= ssl.OP_NO_RENEGOTIATION
    # No session tickets: docker's clients (the CLI, the SDKs) never resume a session, and making
    # OpenSSL's two per connection cost a fifth of the new connections a second the front makes.
    context.options |= ssl.OP_NO_TICKET
    context.num_tickets = 0
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=files[CA].decode("ascii"))
    with _in_memory(files[SERVER_CERT]) as cert, _in_memory(files[SERVER_KEY]) as key:
        context.load_cert_chain(cert, key)
    return context


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[str]:
    fd = os.memfd_create("acap-http-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
