"""The certificates of ``acap-http certs``: a CA, a server and a client certificate made as
Docker's "Protect the Docker daemon socket" recipe does, and sets read from a directory."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acap_http.errors import AcapHttpError
from acap_http.filestore import FileStore
from acap_http.tls import files

CERT_MODE, KEY_MODE = 0o444, 0o400
LIFETIME = datetime.timedelta(days=365)
FRONT_LIFETIME = datetime.timedelta(days=825)  # what macOS and iOS accept from a CA the user added
WILDCARDS = frozenset({"0.0.0.0", "::"})
# What `certs init` writes: the server's three files, the client's pair, and the CA's key.
SERVER_FILES = (files.CA, files.SERVER_CERT, files.SERVER_KEY)
CLIENT_FILES = ("cert.pem", "key.pem")
ALL_FILES = (*SERVER_FILES, "ca-key.pem", *CLIENT_FILES)


def new_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


def init(hosts: list[str], out: Path, key_type: str = "rsa", force: bool = False) -> list[Path]:
    """Write a CA, a server certificate for ``hosts`` (and 127.0.0.1) and a client certificate."""
    try:
        existing = [out / name for name in ALL_FILES if (out / name).exists()]
    except OSError as err:
        raise AcapHttpError(f"cannot write the certificates to {out}: {err.strerror or err}") from None
    if existing and not force:
        raise AcapHttpError(f"{', '.join(map(str, existing))} exist; pass --force to replace them")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = new_key(key_type)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acap-http CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key, now, issuer_key=ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = list(dict.fromkeys([*hosts, "127.0.0.1"]))
    server_key = new_key(key_type)
    server = _leaf(
        names[0], server_key, ca=ca, ca_key=ca_key, now=now, usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=names
    )
    client_key = new_key(key_type)
    client = _leaf("client", client_key, ca=ca, ca_key=ca_key, now=now, usage=ExtendedKeyUsageOID.CLIENT_AUTH, hosts=[])
    written = {
        files.CA: (_pem(ca), CERT_MODE),
        "ca-key.pem": (_key_pem(ca_key), KEY_MODE),
        files.SERVER_CERT: (_pem(server), CERT_MODE),
        files.SERVER_KEY: (_key_pem(server_key), KEY_MODE),
        "cert.pem": (_pem(client), CERT_MODE),
        "key.pem": (_key_pem(client_key), KEY_MODE),
    }
    try:
        FileStore(out).write_many(written)
    except OSError as err:
        raise AcapHttpError(f"cannot write the certificates to {out}: {err.strerror or err}") from None
    return [out / name for name in written]


def self_signed(common_name: str, hosts: Iterable[str], lifetime: datetime.timedelta) -> tuple[bytes, bytes]:
    """A certificate naming ``hosts`` that signs itself, and its EC P-256 key: PEM both."""
    key = new_key("ec")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _builder(subject, subject, key, datetime.datetime.now(datetime.UTC), lifetime, issuer_key=key)
        .add_extension(x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pem(certificate), _key_pem(key)


def front_pair(host: str) -> tuple[bytes, bytes]:
    """The HTTPS front's certificate and key (PEM, self-signed), naming the host: the address
    listened on, or every address of the host's interfaces when that is a wildcard, so that
    clients can check the name they use."""
    import psutil  # noqa: PLC0415  (only serve and install make a front's pair)

    addresses = {host, "127.0.0.1"}
    if host in WILDCARDS:
        addresses |= {entry.address.partition("%")[0] for entries in psutil.net_if_addrs().values()
                      for entry in entries if entry.family in (socket.AF_INET, socket.AF_INET6)}  # fmt: skip
    hosts = [socket.gethostname(), "localhost", *sorted(addresses - WILDCARDS)]
    return self_signed(f"acap-http on {socket.gethostname()}", hosts, FRONT_LIFETIME)


def main(argv: list[str]) -> int:
    """``python -m acap_http.tls.making front-pair HOST CERT KEY``: install, which runs before the
    program it installs and without cryptography, has the new program make the front's pair."""
    if len(argv) != 4 or argv[0] != "front-pair":
        print("usage: python -m acap_http.tls.making front-pair HOST CERT KEY", file=sys.stderr)
        return 2
    cert, key = front_pair(argv[1])
    for path, data, mode in ((Path(argv[3]), key, 0o600), (Path(argv[2]), cert, 0o644)):
        FileStore(path.parent, directory_mode=0o700).write(path.name, data, mode)
    return 0


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: CertificateIssuerPrivateKeyTypes,
    now: datetime.datetime,
    lifetime: datetime.timedelta = LIFETIME,
    *,
    issuer_key: CertificateIssuerPrivateKeyTypes,
) -> x509.CertificateBuilder:
    # Key identifiers, which RFC 5280 asks of every certificate of a chain: Python 3.13's TLS
    # clients (its ssl module, requests, the Docker SDK) verify with X509_STRICT and refuse a
    # certificate without its issuer's ("Missing Authority Key Identifier"); Go does not ask.
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def _leaf(
    common_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    ca: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    now: datetime.datetime,
    usage: x509.ObjectIdentifier,
    hosts: Iterable[str],
) -> x509.Certificate:
    builder = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), ca.subject, key, now, issuer_key=ca_key
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    alternative = [_general_name(host) for host in hosts]
    if alternative:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def read_set(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.glob("*.pem") if path.name != "ca-key.pem"}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
