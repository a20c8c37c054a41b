"""The PEM validator against the PEM matrix: what dockerd can load passes,
stored with LF line endings; everything else is refused with a reason."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from acap_http.errors import InvalidPem
from acap_http.tls import uploads
from acap_http.tls.files import TLS_FILES, TlsFile
from tests import pki

CA = TLS_FILES["ca.pem"]
CERT = TLS_FILES["server-cert.pem"]
KEY = TLS_FILES["server-key.pem"]


@dataclass(frozen=True)
class Material:
    ca: bytes
    other_ca: bytes
    rsa_pkcs1: bytes
    rsa_pkcs8: bytes
    ec_sec1: bytes
    ec_pkcs8: bytes
    rsa_encrypted_pkcs1: bytes
    rsa_encrypted_pkcs8: bytes
    ca_der: bytes


@pytest.fixture(scope="module")
def material() -> Material:
    ca_key, other_key, rsa, ec = pki.rsa_key(), pki.rsa_key(), pki.rsa_key(), pki.ec_key()
    ca = pki.certificate("CA one", ca_key, ca=True)
    fmt = pki.PrivateFormat
    return Material(
        ca=pki.cert_pem(ca),
        other_ca=pki.cert_pem(pki.certificate("CA two", other_key, ca=True)),
        rsa_pkcs1=pki.key_pem(rsa, fmt.TraditionalOpenSSL),
        rsa_pkcs8=pki.key_pem(rsa, fmt.PKCS8),
        ec_sec1=pki.key_pem(ec, fmt.TraditionalOpenSSL),
        ec_pkcs8=pki.key_pem(ec, fmt.PKCS8),
        rsa_encrypted_pkcs1=pki.key_pem(rsa, fmt.TraditionalOpenSSL, b"secret"),
        rsa_encrypted_pkcs8=pki.key_pem(rsa, fmt.PKCS8, b"secret"),
        ca_der=ca.public_bytes(Encoding.DER),
    )


def _junk_block(label: str) -> bytes:
    junk = base64.encodebytes(b"this is not DER, only words " * 3).decode()
    return f"-----BEGIN {label}-----\n{junk}-----END {label}-----\n".encode()


def _bad_block_bundle(m: Material) -> bytes:
    return m.ca + _junk_block("CERTIFICATE")


@dataclass(frozen=True)
class Case:
    slot: TlsFile
    make: Callable[[Material], bytes]
    refused_because: str | None  # a phrase of the reason, or None when accepted
    stored: Callable[[Material], bytes] | None = None  # expected stored bytes when not the input


CASES: dict[str, Case] = {
    "plain certificate": Case(CA, lambda m: m.ca, None),
    "CRLF line endings": Case(CA, lambda m: m.ca.replace(b"\n", b"\r\n"), None, lambda m: m.ca),
    "no final newline": Case(CA, lambda m: m.ca.rstrip(b"\n"), None, lambda m: m.ca),
    "CRLF key without final newline": Case(
        KEY, lambda m: m.rsa_pkcs1.replace(b"\n", b"\r\n").rstrip(), None, lambda m: m.rsa_pkcs1
    ),
    "UTF-8 BOM": Case(CA, lambda m: b"\xef\xbb\xbf" + m.ca, "byte order mark"),
    "text before the first BEGIN": Case(CA, lambda m: b"Certificate:\n  Data: ...\n" + m.ca, "before the first"),
    "text after the END": Case(CA, lambda m: m.ca + b"trailing words\n", "outside the PEM blocks"),
    "junk base64 between correct markers": Case(CA, lambda m: _junk_block("CERTIFICATE"), "not decode to DER"),
    "junk base64 in a key block": Case(KEY, lambda m: _junk_block("PRIVATE KEY"), "not decode to DER"),
    "broken base64": Case(CA, lambda m: m.ca.replace(b"\n", b"\n@@@@\n", 2), "not base64"),
    "missing END line": Case(CA, lambda m: m.ca.replace(b"-----END CERTIFICATE-----", b""), "has no"),
    "mismatched END line": Case(CA, lambda m: m.ca.replace(b"END CERTIFICATE", b"END X509 CRL"), "should be"),
    "empty file": Case(CA, lambda m: b"", "empty"),
    "whitespace only": Case(KEY, lambda m: b"\n \n", "empty"),
    "Proc-Type 4,ENCRYPTED RSA key": Case(KEY, lambda m: m.rsa_encrypted_pkcs1, "encrypted"),
    "ENCRYPTED PRIVATE KEY": Case(KEY, lambda m: m.rsa_encrypted_pkcs8, "encrypted"),
    "RSA PRIVATE KEY (PKCS#1)": Case(KEY, lambda m: m.rsa_pkcs1, None),
    "PRIVATE KEY (PKCS#8)": Case(KEY, lambda m: m.rsa_pkcs8, None),
    "EC PRIVATE KEY": Case(KEY, lambda m: m.ec_sec1, None),
    "EC key in PKCS#8": Case(KEY, lambda m: m.ec_pkcs8, None),
    "TRUSTED CERTIFICATE": Case(
        CA, lambda m: m.ca.replace(b" CERTIFICATE-----", b" TRUSTED CERTIFICATE-----"), "TRUSTED CERTIFICATE"
    ),
    "DER certificate": Case(CA, lambda m: m.ca_der, "DER"),
    "DER bytes in the key slot": Case(KEY, lambda m: m.ca_der, "binary (DER?)"),
    "certificate posted as the key": Case(KEY, lambda m: m.ca, "is a certificate, not a private key"),
    "key posted as a certificate": Case(CERT, lambda m: m.rsa_pkcs1, "is a private key, not a certificate"),
    "key posted as the CA": Case(CA, lambda m: m.ec_pkcs8, "is a private key, not a certificate"),
    "ca.pem bundle of two good certificates": Case(CA, lambda m: m.ca + m.other_ca, None),
    "bundle with a blank line between blocks": Case(CA, lambda m: m.ca + b"\n" + m.other_ca, None),
    "bundle with one bad block": Case(CA, _bad_block_bundle, "not decode to DER"),
    "two keys in one key file": Case(KEY, lambda m: m.rsa_pkcs1 + m.ec_sec1, "2 PEM blocks"),
    "key and certificate in one key file": Case(KEY, lambda m: m.rsa_pkcs8 + m.ca, "2 PEM blocks"),
    "non-ASCII text": Case(
        CA, lambda m: m.ca.replace(b"-----BEGIN", "é-----BEGIN".encode()), "non-ASCII byte at offset 0"
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_pem_matrix(case: Case, material: Material) -> None:
    """Each entry of the PEM matrix is accepted or refused as dockerd would."""
    data = case.make(material)
    if case.refused_because is None:
        stored = uploads.validate(case.slot, data)
        expected = case.stored(material) if case.stored else data
        assert stored == expected
        assert stored.endswith(b"\n") and b"\r" not in stored
    else:
        with pytest.raises(InvalidPem) as refused:
            uploads.validate(case.slot, data)
        assert case.refused_because in str(refused.value)


def test_bad_block_is_named_by_its_line(material: Material) -> None:
    """The reason points at the block that failed, not the whole file."""
    lines = material.ca.count(b"\n")
    with pytest.raises(InvalidPem, match=f"line {lines + 1}"):
        uploads.validate(CA, _bad_block_bundle(material))


def test_table_matches_dockerd_flags() -> None:
    """Keys are stored private, certificates readable; each file feeds its dockerd flag."""
    assert {(f.name, f.mode, f.dockerd_flag) for f in TLS_FILES.values()} == {
        ("ca.pem", 0o644, "--tlscacert"),
        ("server-cert.pem", 0o644, "--tlscert"),
        ("server-key.pem", 0o600, "--tlskey"),
    }
