"""The same questions to dockerd's own TLS (--tls-by dockerd) and to the API's front (--tls-by
front), with openssl s_client: which TLS versions and suites are taken, and which client
certificates. The answers must be the table the README gives, for both, for the dockerd of this
host (20.10 on Debian 12, 26.1 on Debian 13)."""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acap_http.supervisor import versions
from tests import pki
from tests.e2e.running import Mode, running_mode

CBC = versions.of("dockerd", os.environ.get("PATH", "")) < (28,)

# (what the client offers, which client certificate) -> whether the handshake and a request succeed
TABLE = {
    ("-tls1_3", "valid"): True,
    ("-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256", "valid"): True,
    ("-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384", "valid"): True,
    ("-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305", "valid"): False,
    ("-tls1_2 -cipher ECDHE-RSA-AES128-SHA", "valid"): CBC,
    ("-tls1_2 -cipher AES128-GCM-SHA256", "valid"): False,
    ("-tls1_1 -cipher DEFAULT@SECLEVEL=0", "valid"): False,
    ("-tls1_3", "none"): False,
    ("-tls1_3", "other CA"): False,
    ("-tls1_3", "expired"): False,
    ("-tls1_3", "not yet valid"): False,
}


@pytest.fixture(scope="module", params=["dockerd", "front"])
def mode(request: pytest.FixtureRequest, e2e_root: Path) -> Iterator[Mode]:
    yield from running_mode(e2e_root / f"tls-by-{request.param}", "rootful", ("sh",), ("--tls-by", str(request.param)))


def test_the_tls_taken_is_dockerds(mode: Mode) -> None:
    clients = _clients(mode)
    found = {(offer, who): _answers(offer, clients[who]) for offer, who in TABLE}
    assert found == TABLE


def _answers(offer: str, client: tuple[Path, Path] | None) -> bool:
    """Whether a /_ping through openssl s_client with ``offer`` and ``client`` gets dockerd's OK."""
    command = ["openssl", "s_client", "-connect", "127.0.0.1:2376", "-quiet", "-ign_eof", *offer.split()]
    if client is not None:
        command += ["-cert", str(client[0]), "-key", str(client[1])]
    done = subprocess.run(
        command, input="GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout.endswith("\n\nOK")  # (text mode reads \r\n as \n)


def _clients(mode: Mode) -> dict[str, tuple[Path, Path] | None]:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    made: dict[str, tuple[Path, Path] | None] = {
        "valid": (mode.client / "cert.pem", mode.client / "key.pem"),
        "none": None,
    }
    other = pki.Authority("another CA").client_files(mode.root / "other-ca-client")
    made["other CA"] = (other / "cert.pem", other / "key.pem")
    for who, (begins, ends) in {
        "expired": (now - 10 * day, now - day),
        "not yet valid": (now + day, now + 10 * day),
    }.items():
        made[who] = _client(mode, mode.root / who.replace(" ", "-"), begins, ends)
    return made


def _client(mode: Mode, directory: Path, begins: datetime.datetime, ends: datetime.datetime) -> tuple[Path, Path]:
    key = pki.rsa_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")]))
        .issuer_name(mode.authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begins)
        .not_valid_after(ends)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(mode.authority.key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(pki.cert_pem(cert))
    (directory / "key.pem").write_bytes(pki.key_pem(key))
    return directory / "cert.pem", directory / "key.pem"
