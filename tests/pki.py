"""Certificates and keys made at test time with cryptography; none is committed."""

from __future__ import annotations

import base64
import datetime
import functools
import ipaddress
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Encoding = serialization.Encoding
PrivateFormat = serialization.PrivateFormat


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def largest_rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key of 8,192 bits, the largest Go's crypto/tls takes; made once a session (seconds)."""
    return rsa_key(8192)


def fabricated_rsa_key_pem(bits: int, exponent: int = 65537) -> bytes:
    """An RSA key of ``bits`` made in milliseconds from odd numbers that are no primes, and a d
    that inverts nothing: for refusals that must come before any costly check (its size, its
    exponent), and for the check that a key's numbers belong together."""
    half = bits // 2
    p = secrets.randbits(half) | (3 << (half - 2)) | 1  # the two top bits: p * q has all ``bits``
    q = p + 2  # odd, and prime to p: the CRT coefficient exists
    d = secrets.randbits(bits - 8) | 1
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(exponent, p * q),
    )  # fmt: skip
    return key_pem(numbers.private_key(unsafe_skip_rsa_key_validation=True))


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    subject: str,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None,
    *,
    ca: bool = False,
    hosts: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    valid: tuple[datetime.datetime, datetime.datetime] | None = None,  # default: from 5 minutes ago, 30 days
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    begins, ends = valid or (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begins)
        .not_valid_after(ends)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # As certs init makes them: Python 3.13's clients (X509_STRICT) want the key identifiers.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if ca:  # strict verification (Python 3.13) wants a CA's key usage said
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
    if server or client:
        usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    # Ed25519 and Ed448 sign the whole message: they take no separate hash.
    pure = isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    return builder.sign(signer, None if pure else hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def key_pem(
    key: CertificateIssuerPrivateKeyTypes,
    fmt: serialization.PrivateFormat = PrivateFormat.PKCS8,
    password: bytes | None = None,
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(Encoding.PEM, fmt, encryption)


@dataclass(frozen=True)
class ServerSet:
    """The three files dockerd needs, as PEM bytes."""

    ca: bytes
    server_cert: bytes
    server_key: bytes

    def by_name(self) -> dict[str, bytes]:
        return {"ca.pem": self.ca, "server-cert.pem": self.server_cert, "server-key.pem": self.server_key}


def server_set(host: str = "127.0.0.1") -> ServerSet:
    return Authority().server_set(host)


class Authority:
    """A test CA that signs server and client certificates."""

    def __init__(self, name: str = "test CA", key: CertificateIssuerPrivateKeyTypes | None = None) -> None:
        self.key: CertificateIssuerPrivateKeyTypes = key or rsa_key()
        self.cert = certificate(name, self.key, ca=True)

    def server_set(self, host: str = "127.0.0.1", key: rsa.RSAPrivateKey | None = None) -> ServerSet:
        """A server certificate for ``host`` (for ``key``, or a new one) and its key, with this CA."""
        key = key or rsa_key()
        cert = certificate("server", key, (self.cert, self.key), hosts=(host,), server=True)
        return ServerSet(cert_pem(self.cert), cert_pem(cert), key_pem(key, PrivateFormat.TraditionalOpenSSL))

    def client_files(
        self,
        directory: Path,
        valid: tuple[datetime.datetime, datetime.datetime] | None = None,
        name: str = "client",
        hosts: tuple[str, ...] = (),
    ) -> Path:
        """ca.pem, cert.pem and key.pem for the docker CLI (DOCKER_CERT_PATH), in ``directory``
        (``valid``: the client certificate's window, when not the usual one; ``name``, ``hosts``:
        its subject's common name, and its subject alternative names)."""
        key = rsa_key()
        cert = certificate(name, key, (self.cert, self.key), hosts=hosts, client=True, valid=valid)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.pem").write_bytes(cert_pem(self.cert))
        (directory / "cert.pem").write_bytes(cert_pem(cert))
        (directory / "key.pem").write_bytes(key_pem(key))
        return directory


# --- certificates and keys that are wrong in one precise way ------------------------------------


def builder(
    key: CertificateIssuerPrivateKeyTypes | None = None, subject: x509.Name | None = None, serial: int | None = None
) -> x509.CertificateBuilder:
    """A leaf certificate's builder, signed by whoever the caller likes."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]) if subject is None else subject
    public = (key or rsa_key()).public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
        .public_key(public)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def der_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def with_raw_extension(oid: x509.ObjectIdentifier, value: bytes) -> bytes:
    """PEM of a certificate whose extension ``oid`` holds ``value`` as is (malformed or not)."""
    signer = rsa_key()
    cert = builder(signer).add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return cert_pem(cert.sign(signer, hashes.SHA256()))


def with_duplicate_extension() -> bytes:
    """PEM of a certificate carrying one extension twice (the OID of the second rewritten)."""
    signer = rsa_key()
    cert = (
        builder(signer)
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), critical=False)
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.6"), b"\x05\x00"), critical=False)
        .sign(signer, hashes.SHA256())
    )
    der = cert.public_bytes(Encoding.DER).replace(bytes([0x2A, 3, 4, 6]), bytes([0x2A, 3, 4, 5]))
    return der_pem(der)


RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1


def with_unknown_key_algorithm() -> bytes:
    """PEM of a certificate whose public key algorithm OID nobody knows (1.2.840.113549.1.1.99)."""
    signer = rsa_key()
    der = builder(signer).sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)
    return der_pem(der.replace(RSA_ENCRYPTION_OID, RSA_ENCRYPTION_OID[:-1] + b"\x63", 1))


def openssl_key(*args: str) -> bytes:
    """A key made by the openssl command (for what cryptography refuses to make: RSA 512, DSA)."""
    made = subprocess.run(["openssl", *args], capture_output=True, check=True)
    return made.stdout


def with_negative_serial() -> bytes:
    """PEM of a certificate whose serial number is negative (its first byte's top bit set)."""
    signer = rsa_key()
    cert = builder(signer, serial=0x11223344556677).sign(signer, hashes.SHA256())
    der = cert.public_bytes(Encoding.DER)
    serial = bytes.fromhex("020711223344556677")
    assert der.count(serial) == 1
    return der_pem(der.replace(serial, bytes.fromhex("020791223344556677")))
