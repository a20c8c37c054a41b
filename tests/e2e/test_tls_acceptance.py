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
    now, day = datetime.datetime.now(datetime.UTC), datetime.timedelta(days=1)
    windows = {"valid": None, "expired": (now - 10 * day, now - day), "not yet valid": (now + day, now + 10 * day)}
    made: dict[str, tuple[Path, Path] | None] = {"none": None}
    for who, window in windows.items():
        directory = mode.authority.client_files(mode.root / f"acceptance-{who.replace(' ', '-')}", valid=window)
        made[who] = (directory / "cert.pem", directory / "key.pem")
    other = pki.Authority("another CA").client_files(mode.root / "other-ca-client")
    made["other CA"] = (other / "cert.pem", other / "key.pem")
    return made
