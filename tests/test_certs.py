"""Certificate tooling and set judgement: what init makes passes check, and
each defect of a crafted set is found."""

from __future__ import annotations

import datetime
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acap_http.errors import AcapHttpError
from acap_http.tls import judging, making
from acap_http.tls.judging import Level
from tests import pki


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    making.init(["camera.example", "192.0.2.10"], out, key_type="ec")
    return out


def test_init_output_passes_check(made: Path) -> None:
    """Every finding on what init makes is OK, SANs included (and 127.0.0.1 always)."""
    found = judging.findings(making.read_set(made), hosts=["camera.example", "192.0.2.10", "127.0.0.1"])
    assert [f for f in found if f.level is not Level.OK] == []
    assert len(found) >= 12


def test_init_output_passes_strict_verification_both_ways(made: Path) -> None:
    """Python 3.13's TLS clients verify with X509_STRICT (a certificate needs its issuer's key
    identifier): a mutual-TLS handshake with what init makes succeeds under it, whatever Python runs."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(made / "server-cert.pem", made / "server-key.pem")
    server.load_verify_locations(made / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=str(made / "ca.pem"))
    client.load_cert_chain(made / "cert.pem", made / "key.pem")
    for context in (server, client):
        context.verify_flags |= ssl.VERIFY_X509_STRICT
    left, right = socket.socketpair()
    with (
        server.wrap_socket(left, server_side=True, do_handshake_on_connect=False) as served,
        client.wrap_socket(right, server_hostname="camera.example", do_handshake_on_connect=False) as asking,
    ):
        done = threading.Thread(target=served.do_handshake)
        done.start()
        asking.do_handshake()
        done.join(10)
        server_seen, client_seen = asking.getpeercert(), served.getpeercert()
        assert server_seen and server_seen["subject"] == ((("commonName", "camera.example"),),)
        assert client_seen and client_seen["subject"] == ((("commonName", "client"),),)


def test_init_modes_and_no_overwrite(made: Path) -> None:
    """Keys are 0400, certificates 0444; a second init refuses without --force."""
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made.iterdir()}
    assert modes == {
        "ca.pem": 0o444,
        "server-cert.pem": 0o444,
        "cert.pem": 0o444,
        "ca-key.pem": 0o400,
        "server-key.pem": 0o400,
        "key.pem": 0o400,
    }
    before = (made / "server-cert.pem").read_bytes()
    with pytest.raises(AcapHttpError, match="--force"):
        making.init(["other"], made, key_type="ec")
    assert (made / "server-cert.pem").read_bytes() == before


def test_init_rsa_default_is_4096(tmp_path: Path) -> None:
    """Without --key-type the keys are RSA 4096, and --force replaces a set."""
    making.init(["h"], tmp_path, key_type="ec")
    making.init(["h"], tmp_path, force=True)
    found = judging.findings(making.read_set(tmp_path))
    assert "server-key.pem is RSA 4096 bits" in [f.message for f in found]


def _bad_set(**changes: object) -> dict[str, bytes]:
    """A server set from one CA, with one thing spoilt."""
    authority = pki.Authority()
    key: rsa.RSAPrivateKey = changes.get("key") or pki.rsa_key()  # type: ignore[assignment]
    now = datetime.datetime.now(datetime.UTC)
    not_after = now - datetime.timedelta(days=1) if changes.get("expired") else now + datetime.timedelta(days=90)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if changes.get("client_only") else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(not_after)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if not changes.get("no_san"):
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("camera.example")]), critical=False)
    cert = builder.sign(authority.key, hashes.SHA256())
    server_key = pki.rsa_key() if changes.get("mismatched") else key
    return {
        "ca.pem": pki.cert_pem(authority.cert),
        "server-cert.pem": pki.cert_pem(cert),
        "server-key.pem": pki.key_pem(server_key),
    }


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"mismatched": True}, "server-key.pem does not match server-cert.pem"),
        ({"client_only": True}, "server-cert.pem lacks extendedKeyUsage serverAuth"),
        ({"key": rsa.generate_private_key(public_exponent=65537, key_size=1024)}, "RSA 1024 bits; use at least 2048"),
        ({"expired": True}, "server-cert.pem expired on"),
        ({"no_san": True}, "server-cert.pem does not name camera.example"),
    ],
    ids=["mismatched key", "client-only EKU", "1024-bit key", "expired", "missing SAN"],
)
def test_each_defect_is_found(changes: dict[str, object], failure: str) -> None:
    """certs check fails a crafted bad set with the finding that names its defect."""
    found = judging.findings(_bad_set(**changes), hosts=["camera.example"])
    failures = [f.message for f in found if f.level is Level.FAIL]
    assert any(message.startswith(failure) or failure in message for message in failures), failures


def test_certificate_from_another_ca_is_found() -> None:
    """A server certificate the CA did not sign fails the issuance check."""
    files = _bad_set()
    files["ca.pem"] = pki.cert_pem(pki.Authority("someone else").cert)
    failures = [f.message for f in judging.findings(files) if f.level is Level.FAIL]
    assert failures == ["server-cert.pem is not issued by any certificate in ca.pem"]


def test_dockerd_refusal_is_only_what_dockerd_refuses() -> None:
    """dockerd refuses a key that does not match; it starts with an expired or SAN-less certificate."""
    assert judging.dockerd_refusal(_bad_set(mismatched=True)) == "server-key.pem does not match server-cert.pem"
    assert judging.dockerd_refusal(_bad_set(expired=True, no_san=True)) is None
    incomplete = _bad_set(mismatched=True)
    del incomplete["ca.pem"]
    assert judging.dockerd_refusal(incomplete) is None  # a missing file is Status 3's business


def test_summary_never_holds_key_material(made: Path) -> None:
    """The JSON summary describes each file, fingerprints and findings, and holds no private key."""
    files = {name: (made / name).read_bytes() for name in ("ca.pem", "server-cert.pem", "server-key.pem")}
    summary = judging.summary(files)
    text = repr(summary)
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    assert summary["dockerd_would_start"] is True
    cert = summary["server-cert.pem"]["certificates"][0]  # type: ignore[index]
    assert cert["subject_alternative_names"] == ["192.0.2.10", "127.0.0.1", "camera.example"]
    assert len(cert["sha256_fingerprint"].split(":")) == 32
    assert summary["server-key.pem"]["key_type"] == "EC secp256r1"  # type: ignore[index]
