"""What checking an uploaded key costs the process that serves requests: the product's check
(Go's rules: size first, then the numbers) against OpenSSL's own (which tests the primes, with
the interpreter's lock held), side by side, for RSA keys up to the largest Go takes, and the
refusal of a larger one. Target: the largest accepted key checked in at most 50 ms (gunicorn's
worker must never stall on an upload). Alone: ``.venv/bin/python -m bench.keycheck``.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization

from acap_http.errors import InvalidPem
from acap_http.tls import uploads
from acap_http.tls.files import TLS_FILES
from bench.targets import Targets
from tests import pki

TARGET = 0.050
KEY = TLS_FILES["server-key.pem"]


def _timed(action: Callable[[], object], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(targets: Targets) -> None:
    """Print the table, against the target."""
    print("\nkey check at upload (medians of 5)     product      OpenSSL's check   ratio")
    largest = 0.0
    for bits in (2048, 4096, 8192):
        pem = pki.key_pem(pki.rsa_key(bits))
        ours = _timed(functools.partial(uploads.validate, KEY, pem))
        openssl = _timed(functools.partial(serialization.load_pem_private_key, pem, None), rounds=1)
        largest = ours if bits == 8192 else largest
        print(f"  RSA {bits:5} bits                   {ours * 1000:9.2f} ms {openssl * 1000:12.1f} ms "
              f"{openssl / ours:9.0f}x")  # fmt: skip
    oversized = pki.fabricated_rsa_key_pem(16384)

    def refuse() -> None:
        try:
            uploads.validate(KEY, oversized)
        except InvalidPem:
            return
        raise AssertionError("a 16,384-bit key was accepted")

    print(f"  RSA 16384 bits, refused unchecked   {_timed(refuse) * 1000:9.2f} ms   (OpenSSL's: about 30 s)")
    met = targets.check(f"key check {largest * 1000:.2f} ms > {TARGET * 1000:.0f} ms", largest <= TARGET)
    print(f"  target: the largest accepted key at most {TARGET * 1000:.0f} ms: {met}")


if __name__ == "__main__":
    checked = Targets()
    measure(checked)
    sys.exit(checked.verdict())
