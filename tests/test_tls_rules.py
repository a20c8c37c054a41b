"""Certificates and keys cryptography cannot read in full, or dockerd cannot serve TLS with:
refused at upload with the reason (never a 500), and summarised with a finding when they
are on disk anyway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtensionOID

from acap_http.errors import InvalidPem
from acap_http.tls import uploads
from acap_http.tls.files import TLS_FILES, TlsFile
from acap_http.tls.store import TlsStore
from tests import pki

CA = TLS_FILES["ca.pem"]
CERT = TLS_FILES["server-cert.pem"]
KEY = TLS_FILES["server-key.pem"]

ZERO_CERTIFICATE = b"-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n"
SAN, IAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.ISSUER_ALTERNATIVE_NAME
MALFORMED = b"\x30\x03\x01\x01"  # a SEQUENCE whose BOOLEAN lacks its value


def _leaf(key: object) -> bytes:
    """A certificate for ``key``'s public half, signed by an RSA CA."""
    signer = pki.rsa_key()
    return pki.cert_pem(pki.builder(key).sign(signer, hashes.SHA256()))  # type: ignore[arg-type]


def _empty_subject_critical_san() -> bytes:
    signer = pki.rsa_key()
    cert = pki.builder(signer, subject=x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("camera.example")]), critical=True
    )
    return pki.cert_pem(cert.sign(signer, hashes.SHA256()))


@dataclass(frozen=True)
class Case:
    slot: TlsFile
    make: Callable[[], bytes]
    refused_because: str | None


def _rsa512() -> bytes:
    return pki.openssl_key("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512")


def _key_of(pem: bytes) -> object:
    return load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)


CASES = {
    # Readable in part only: each was a 500 (or a wrong refusal) before.
    "zero certificate in ca.pem": Case(CA, lambda: ZERO_CERTIFICATE, "is not an X.509 certificate"),
    "zero certificate in server-cert.pem": Case(CERT, lambda: ZERO_CERTIFICATE, "is not an X.509 certificate"),
    "zero key": Case(
        KEY, lambda: ZERO_CERTIFICATE.replace(b"CERTIFICATE", b"PRIVATE KEY"), "does not hold a readable private key"
    ),
    "empty subject with a critical SAN (RFC 5280)": Case(CERT, _empty_subject_critical_san, None),
    "unknown public key algorithm": Case(CERT, pki.with_unknown_key_algorithm, "public key algorithm"),
    "unknown public key algorithm in the CA": Case(CA, pki.with_unknown_key_algorithm, "public key algorithm"),
    "negative serial number": Case(CERT, pki.with_negative_serial, "serial number that is not positive"),
    "duplicate extensions": Case(CERT, pki.with_duplicate_extension, "Duplicate"),
    "malformed SAN": Case(CERT, lambda: pki.with_raw_extension(SAN, MALFORMED), "cannot be read in full"),
    "malformed IAN": Case(CA, lambda: pki.with_raw_extension(IAN, MALFORMED), "cannot be read in full"),
    "malformed name constraints": Case(
        CA, lambda: pki.with_raw_extension(ExtensionOID.NAME_CONSTRAINTS, MALFORMED), "cannot be read in full"
    ),
    "malformed AKI": Case(
        CERT,
        lambda: pki.with_raw_extension(ExtensionOID.AUTHORITY_KEY_IDENTIFIER, MALFORMED),
        "cannot be read in full",
    ),
    "5-byte IP address in the SAN": Case(
        CERT, lambda: pki.with_raw_extension(SAN, b"\x30\x07\x87\x05\x01\x02\x03\x04\x05"), "cannot be read in full"
    ),
    # The key rule table (tls.certificates): what Go's crypto/tls serves TLS with.
    "P-256 key": Case(KEY, lambda: pki.key_pem(ec.generate_private_key(ec.SECP256R1())), None),
    "P-384 key": Case(KEY, lambda: pki.key_pem(ec.generate_private_key(ec.SECP384R1())), None),
    "P-521 certificate": Case(CERT, lambda: _leaf(ec.generate_private_key(ec.SECP521R1())), None),
    "Ed25519 key": Case(KEY, lambda: pki.key_pem(ed25519.Ed25519PrivateKey.generate()), None),
    "RSA 1024 key": Case(
        KEY, lambda: pki.openssl_key("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"), None
    ),
    "RSA 8192 key, the largest Go takes": Case(KEY, lambda: pki.key_pem(pki.largest_rsa_key()), None),
    "RSA 8192 certificate": Case(CERT, lambda: _leaf(pki.largest_rsa_key()), None),
    "RSA 16384 key": Case(KEY, lambda: pki.fabricated_rsa_key_pem(16384), "RSA key of 16384 bits"),
    "RSA 16384 CA": Case(CA, lambda: _leaf(_key_of(pki.fabricated_rsa_key_pem(16384))), "RSA key of 16384 bits"),
    "RSA public exponent 2^40+1": Case(
        KEY, lambda: pki.fabricated_rsa_key_pem(2048, 2**40 + 1), "public exponent 1099511627777"
    ),
    "RSA public exponent of 4096 bits": Case(
        KEY, lambda: pki.fabricated_rsa_key_pem(8192, 2**4095 + 1), "public exponent of 4096 bits"
    ),
    "RSA key whose numbers do not belong together": Case(
        KEY, lambda: pki.fabricated_rsa_key_pem(2048), "The RSA key is inconsistent"
    ),
    "secp256k1 key": Case(KEY, lambda: pki.key_pem(ec.generate_private_key(ec.SECP256K1())), "curve secp256k1"),
    "brainpool key": Case(
        KEY, lambda: pki.key_pem(ec.generate_private_key(ec.BrainpoolP256R1())), "curve brainpoolP256r1"
    ),
    "P-192 key": Case(KEY, lambda: pki.key_pem(ec.generate_private_key(ec.SECP192R1())), "curve secp192r1"),
    "P-224 key": Case(KEY, lambda: pki.key_pem(ec.generate_private_key(ec.SECP224R1())), "curve secp224r1"),
    "secp256k1 certificate": Case(CERT, lambda: _leaf(ec.generate_private_key(ec.SECP256K1())), "curve secp256k1"),
    "brainpool CA": Case(CA, lambda: _leaf(ec.generate_private_key(ec.BrainpoolP384R1())), "curve brainpoolP384r1"),
    # A CA's key only verifies: Go's crypto/x509 verifies on P-224, its crypto/tls cannot sign a handshake there.
    "P-224 CA": Case(CA, lambda: _leaf(ec.generate_private_key(ec.SECP224R1())), None),
    "P-224 certificate": Case(CERT, lambda: _leaf(ec.generate_private_key(ec.SECP224R1())), "curve secp224r1"),
    "P-224 intermediate after the server's certificate": Case(
        CERT, lambda: _leaf(pki.rsa_key()) + _leaf(ec.generate_private_key(ec.SECP224R1())), None
    ),
    "P-192 CA": Case(CA, lambda: _leaf(ec.generate_private_key(ec.SECP192R1())), "verifies signatures with P-224"),
    "RSA 512 key": Case(KEY, _rsa512, "RSA key of 512 bits"),
    "RSA 512 certificate": Case(CERT, lambda: _leaf(_key_of(_rsa512())), "RSA key of 512 bits"),
    "Ed448 key": Case(KEY, lambda: pki.key_pem(ed448.Ed448PrivateKey.generate()), "a key of type Ed448"),
    "DSA key in PKCS#8": Case(KEY, lambda: pki.key_pem(dsa.generate_private_key(2048)), "a key of type DSA"),
    "DSA PRIVATE KEY": Case(
        KEY, lambda: pki.key_pem(dsa.generate_private_key(2048), pki.PrivateFormat.TraditionalOpenSSL), "a DSA key"
    ),
    # Labels: the original's three, each holding what it says.
    "RSA key under an EC PRIVATE KEY label": Case(
        KEY,
        lambda: pki.key_pem(pki.rsa_key(), pki.PrivateFormat.TraditionalOpenSSL).replace(b"RSA PRIVATE", b"EC PRIVATE"),
        "EC PRIVATE KEY label says SEC 1, but the key is in another format",
    ),
    "PKCS#8 key under an RSA PRIVATE KEY label": Case(
        KEY,
        lambda: pki.key_pem(pki.rsa_key()).replace(b"PRIVATE KEY", b"RSA PRIVATE KEY"),
        "RSA PRIVATE KEY label says PKCS#1",
    ),
    "FOO PRIVATE KEY": Case(
        KEY,
        lambda: pki.key_pem(pki.rsa_key()).replace(b"PRIVATE KEY", b"FOO PRIVATE KEY"),
        "is a FOO PRIVATE KEY; expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rules(case: Case) -> None:
    """Each case is accepted, or refused with its reason: never an unexpected exception."""
    data = case.make()
    if case.refused_because is None:
        assert uploads.validate(case.slot, data) == data
    else:
        with pytest.raises(InvalidPem) as refused:
            uploads.validate(case.slot, data)
        assert case.refused_because in str(refused.value)


REFUSED_ON_DISK = {name: case for name, case in CASES.items() if case.refused_because is not None}


@pytest.mark.parametrize("case", REFUSED_ON_DISK.values(), ids=REFUSED_ON_DISK.keys())
def test_what_is_on_disk_is_summarised_and_judged(case: Case, tmp_path: Path) -> None:
    """A file that would be refused today but is on disk (an older release stored it) is summarised
    with its reason and judged unusable: no exception, dockerd not started into it."""
    good = pki.server_set()
    files = good.by_name()
    files[case.slot.name] = case.make()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    store = TlsStore(tmp_path)
    summary = store.summary()
    entry = summary[case.slot.name]
    assert isinstance(entry, dict) and case.refused_because in entry["error"]
    assert summary["dockerd_would_start"] is False
    refusal = store.refusal()
    assert refusal is not None and refusal.startswith(f"{case.slot.name} cannot be used: ")


def test_a_certificate_of_an_unknown_version_is_refused() -> None:
    """Version 2 (v2: 1) where X.509 has 0 or 2: cryptography raises InvalidVersion, which is no
    ValueError (found by make fuzz); the upload is refused, and the summary of such a file says why."""
    signer = pki.rsa_key()
    der = pki.builder(signer).sign(signer, hashes.SHA256()).public_bytes(pki.Encoding.DER)
    damaged = der.replace(bytes.fromhex("a003020102"), bytes.fromhex("a003020101"), 1)
    with pytest.raises(InvalidPem, match=r"is not an X\.509 certificate"):
        uploads.validate(CERT, pki.der_pem(damaged))
