"""``acap-http certs``: make a CA, a server and a client certificate as
Docker's "Protect the Docker daemon socket" recipe does, check a set
offline, and push the server's three files to a running product as one set."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acap_http import tlsset
from acap_http.errors import AcapHttpError, InvalidPem
from acap_http.filestore import FileStore
from acap_http.handlers.tls_files import RESTART_HEADER
from acap_http.tlsstore import TlsStore

CERT_MODE, KEY_MODE = 0o444, 0o400
LIFETIME = datetime.timedelta(days=365)
# What `certs init` writes: the server's three files, the client's pair, and the CA's key.
SERVER_FILES = (tlsset.CA, tlsset.SERVER_CERT, tlsset.SERVER_KEY)
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
        _builder(ca_name, ca_name, ca_key, now)
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
        tlsset.CA: (_pem(ca), CERT_MODE),
        "ca-key.pem": (_key_pem(ca_key), KEY_MODE),
        tlsset.SERVER_CERT: (_pem(server), CERT_MODE),
        tlsset.SERVER_KEY: (_key_pem(server_key), KEY_MODE),
        "cert.pem": (_pem(client), CERT_MODE),
        "key.pem": (_key_pem(client_key), KEY_MODE),
    }
    try:
        FileStore(out).write_many(written)
    except OSError as err:
        raise AcapHttpError(f"cannot write the certificates to {out}: {err.strerror or err}") from None
    return [out / name for name in written]


def _builder(
    subject: x509.Name, issuer: x509.Name, key: CertificateIssuerPrivateKeyTypes, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
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
        _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), ca.subject, key, now)
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


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Turns a failure to reach ``url``, or an error answer, into one line for the operator."""
    try:
        yield
    except urllib.error.HTTPError as err:
        raise AcapHttpError(f"{url} answered {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise AcapHttpError(f"cannot reach {url}: {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        raise AcapHttpError(f"cannot reach {url}: {err}") from None


def read_server_set(directory: Path) -> dict[str, bytes]:
    """The server's three files from ``directory``, each checked as the product will check it."""
    store = TlsStore(directory)
    try:
        files = store.read()
    except OSError as err:
        raise AcapHttpError(f"cannot read {directory}: {err.strerror or err}") from None
    missing = [name for name, data in files.items() if data is None]
    if missing:
        raise AcapHttpError(f"{directory} lacks {', '.join(missing)} (make them with 'acap-http certs init')")
    checked = {}
    for name, data in files.items():
        assert data is not None
        try:
            checked[name] = store.validate(name, data)
        except InvalidPem as err:
            raise AcapHttpError(f"{directory / name}: {err}") from None
    return checked


class Front:
    """The product's front as ``certs push`` talks to it: digest authentication, one user."""

    def __init__(self, url: str, user: str, password: str, app_name: str) -> None:
        self.url = url.rstrip("/")
        self.app_name = app_name
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, self.url, user, password)
        self._opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))

    def status(self) -> str:
        query = f"{self.url}/axis-cgi/param.cgi?action=list&group=root.{self.app_name}.Status"
        with _reaching(self.url), self._opener.open(query, timeout=10) as response:
            answer: bytes = response.read()
        return answer.decode(errors="replace").strip().partition("=")[2]

    def status_after_restart(self, before: str, timeout: float = 60, quiet: float = 5) -> str:
        """The Status the restart an upload asked for leads to: once the restart has been seen
        under way (1, or -1 while the app starts) and has settled, or once Status differs from
        ``before``. Never ``before`` read too early: a restart shows 1 for a quarter of a second
        at least, and this asks every 50 ms. If nothing changes for ``quiet`` seconds, that is it."""
        began = time.monotonic()
        under_way = False
        while True:
            status = self.status()
            if status.startswith(("1 ", "-1 ")):
                under_way = True
            elif under_way or status != before or time.monotonic() - began > quiet:
                return status
            if time.monotonic() - began > timeout:
                return status
            time.sleep(0.05)

    def push(self, files: dict[str, bytes]) -> tuple[int, str, str]:
        """POST the three server files as one set; returns status, body and the restart header."""
        boundary = secrets.token_hex(16)
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            "Content-Type: application/x-pem-file\r\n\r\n".encode()
            + data
            + b"\r\n"
            for name, data in files.items()
        )
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"{self.url}/local/{self.app_name}/tls",
            data=body,
            method="POST",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with _reaching(self.url):
            try:
                with self._opener.open(request, timeout=30) as response:
                    answer = response.read().decode(errors="replace")
                    return response.status, answer, response.headers.get(RESTART_HEADER, "")
            except urllib.error.HTTPError as err:  # an answer all the same: the caller prints it
                return err.code, err.read().decode(errors="replace"), err.headers.get(RESTART_HEADER, "")
