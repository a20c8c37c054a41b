"""The key rule table (``acap_http/tls/certificates.py``) against the real thing: for each kind of
server key, a real dockerd started with it and the real docker CLI over mutual TLS agree
with the product's verdict (accepted at upload, or refused with a reason)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from acap_http.errors import InvalidPem
from acap_http.supervisor.housekeeping import left_mounts
from acap_http.tls import uploads
from acap_http.tls.files import TLS_FILES
from tests import pki
from tests.e2e.front import docker, free_port

KeyMaker = Callable[[], CertificateIssuerPrivateKeyTypes]


def _openssl_rsa(bits: int) -> CertificateIssuerPrivateKeyTypes:
    pem = pki.openssl_key("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}")
    key = load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


KEYS: dict[str, KeyMaker] = {
    "RSA 2048": lambda: pki.rsa_key(2048),
    "RSA 1024": lambda: _openssl_rsa(1024),
    "RSA 512": lambda: _openssl_rsa(512),
    "P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "P-521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "P-224": lambda: ec.generate_private_key(ec.SECP224R1()),
    "P-192": lambda: ec.generate_private_key(ec.SECP192R1()),
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "brainpoolP256r1": lambda: ec.generate_private_key(ec.BrainpoolP256R1()),
    "Ed25519": ed25519.Ed25519PrivateKey.generate,
    "Ed448": ed448.Ed448PrivateKey.generate,
    "DSA": lambda: dsa.generate_private_key(2048),
}
# Key-agreement keys: a certificate can carry one, nothing can sign with one (server slot only).
AGREEMENT_KEYS: dict[str, Callable[[], x25519.X25519PrivateKey | x448.X448PrivateKey]] = {
    "X25519": x25519.X25519PrivateKey.generate,
    "X448": x448.X448PrivateKey.generate,
}
# dockerds started at once: on two cores more only start slower.
BATCH = 6
# Each case: (the slot whose key varies, the kind).
CASES = [("server key", kind) for kind in [*KEYS, *AGREEMENT_KEYS]] + [("CA key", kind) for kind in KEYS]
# Where the product is stricter than this dockerd and docker CLI, on purpose, and why.
STRICTER = {
    ("CA key", "RSA 512"): "a 512-bit key is factored in hours: whoever does signs client certificates dockerd trusts",
}


def _product_accepts(files: dict[str, bytes]) -> bool:
    try:
        for name, data in files.items():
            uploads.validate(TLS_FILES[name], data)
    except InvalidPem:
        return False
    return True


class Dockerd:
    """A root dockerd on a free port serving TLS with given files; no containers, no network set-up."""

    def __init__(self, root: Path, files: dict[str, bytes]) -> None:
        root.mkdir(parents=True)
        for name, data in files.items():
            (root / name).write_bytes(data)
        (root / "daemon.json").write_text("{}")
        self.port = free_port()
        self.data_root = root / "data"
        self.log = root / "dockerd.log"
        command = [
            "dockerd",
            "--config-file", str(root / "daemon.json"),
            "--data-root", str(self.data_root),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "dockerd.pid"),
            "--storage-driver=vfs", "--iptables=false", "--bridge=none",
            "-H", f"tcp://127.0.0.1:{self.port}",
            "--tlsverify", "--tlscacert", str(root / "ca.pem"),
            "--tlscert", str(root / "server-cert.pem"), "--tlskey", str(root / "server-key.pem"),
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # A root dockerd leaves its data-root bind-mounted on itself.
        for mount in left_mounts(self.data_root):
            subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _case_files(slot: str, kind: str, authority: pki.Authority, root: Path) -> tuple[dict[str, bytes], Path]:
    """The three files for a case, and the docker CLI's client pair from the same CA."""
    if slot == "CA key":  # a CA of that kind signs an RSA 2048 server key and the client's
        authority = pki.Authority(key=KEYS[kind]())
        key: Any = pki.rsa_key(2048)
    else:
        key = (KEYS | AGREEMENT_KEYS)[kind]()
    cert = pki.certificate("server", key, (authority.cert, authority.key), hosts=("127.0.0.1",), server=True)
    files = {
        "ca.pem": pki.cert_pem(authority.cert),
        "server-cert.pem": pki.cert_pem(cert),
        "server-key.pem": pki.key_pem(key),
    }
    return files, authority.client_files(root / "client")


def _verdicts(
    cases: list[tuple[str, str]], authority: pki.Authority, root: Path
) -> dict[tuple[str, str], tuple[bool, bool, str]]:
    """Start a dockerd per case, then ask each with the docker CLI; every dockerd is stopped whatever happens."""
    daemons: dict[tuple[str, str], tuple[dict[str, bytes], Path, Dockerd]] = {}
    results = {}
    try:
        for slot, kind in cases:
            place = root / str(CASES.index((slot, kind)))  # short: containerd's socket path must fit in 108 bytes
            files, client = _case_files(slot, kind, authority, place)
            daemons[slot, kind] = files, client, Dockerd(place / "dockerd", files)
        for case, (files, client, daemon) in daemons.items():
            works = False
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and daemon.process.poll() is None and not works:
                answer = docker("version", "--format", "{{.Server.Version}}", host=f"tcp://127.0.0.1:{daemon.port}",
                                config=root / "docker-config", certs=client, timeout=20)  # fmt: skip
                works = answer.returncode == 0
                if not works and "connection refused" not in answer.stderr:
                    break  # dockerd listens and the handshake failed: a verdict
                time.sleep(0.1)
            results[case] = (_product_accepts(files), works, daemon.log.read_text(errors="replace")[-2000:])
    finally:
        for _, _, daemon in daemons.values():
            daemon.stop()
    return results


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], tuple[bool, bool, str]]]:
    """Per case: (the product accepts the set, docker --tlsverify works against dockerd, dockerd's log)."""
    root = tmp_path_factory.mktemp("key-rules")
    root.chmod(0o755)
    authority = pki.Authority()
    results: dict[tuple[str, str], tuple[bool, bool, str]] = {}
    for start in range(0, len(CASES), BATCH):
        results |= _verdicts(CASES[start : start + BATCH], authority, root)
    yield results


@pytest.mark.parametrize("case", CASES, ids=[f"{slot}: {kind}" for slot, kind in CASES])
def test_product_verdict_matches_dockerd_and_docker_cli(
    served: dict[tuple[str, str], tuple[bool, bool, str]], case: tuple[str, str]
) -> None:
    """The product accepts a set exactly when the real dockerd serves TLS with it to the docker CLI,
    whatever kind of key the server has, or the CA that signs the server's and the client's;
    where it is stricter on purpose, it refuses what dockerd would take."""
    accepts, works, log = served[case]
    if case in STRICTER:
        assert not accepts, f"{case}: accepted, though {STRICTER[case]}"
    else:
        assert accepts == works, f"{case}: product accepts={accepts}, docker works={works}\n{log}"
