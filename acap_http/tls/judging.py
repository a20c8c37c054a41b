"""Judging a set of TLS files as a whole: what dockerd would refuse at start,
the operator's findings (``acap-http certs check``), and the summary
``GET /local/dockerdwrapper/tls`` gives. Pure functions of the files' bytes: reading
the stored files is the store's (``store.TlsStore.refusal``, ``store.TlsStore.summary``).
Nothing here returns key material."""

from __future__ import annotations

import datetime
import enum
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from acap_http.errors import InvalidPem
from acap_http.tls import uploads
from acap_http.tls.certificates import describe_certificate, key_shape, subject_alternative_names
from acap_http.tls.files import CA, SERVER_CERT, SERVER_KEY, Content

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
EXPIRY_WARNING = datetime.timedelta(days=30)


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.level.value.upper():4} {self.message}"


def load_certificates(data: bytes, content: Content = Content.CERTIFICATES) -> list[x509.Certificate]:
    """The certificates of a stored file, read as an upload is (InvalidPem if they cannot be)."""
    return uploads.read_certificates(data, content)


def load_key(data: bytes) -> PrivateKeyTypes:
    return uploads.read_private_key(data)


def dockerd_refusal(files: Mapping[str, bytes]) -> str | None:
    """Why dockerd would refuse to start with these files (as Go's tls.X509KeyPair and
    its CA pool read them), or None. A missing file is Status 3's business, not this."""
    if not all(name in files for name in (CA, SERVER_CERT, SERVER_KEY)):
        return None
    try:
        load_certificates(files[CA], Content.AUTHORITIES)
    except InvalidPem as err:
        return f"{CA} cannot be used: {err}"
    try:
        certificate = load_certificates(files[SERVER_CERT])[0]
    except InvalidPem as err:
        return f"{SERVER_CERT} cannot be used: {err}"
    try:
        key = load_key(files[SERVER_KEY])
    except InvalidPem as err:
        return f"{SERVER_KEY} cannot be used: {err}"
    if not _same_key(certificate.public_key(), key):
        return f"{SERVER_KEY} does not match {SERVER_CERT}"
    return None


def _same_key(public: PublicKeyTypes, private: PrivateKeyTypes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = private.public_key().public_bytes(serialization.Encoding.DER, spki)
    return public.public_bytes(serialization.Encoding.DER, spki) == mine


def findings(
    files: Mapping[str, bytes], hosts: Iterable[str] = (), now: datetime.datetime | None = None
) -> list[Finding]:
    """Every check of ``certs check`` on a server set (and a client pair, if there)."""
    now = now or datetime.datetime.now(datetime.UTC)
    missing = [name for name in (CA, SERVER_CERT, SERVER_KEY) if name not in files]
    if missing:
        return [Finding(Level.FAIL, f"missing: {', '.join(missing)}")]
    try:
        authorities = load_certificates(files[CA], Content.AUTHORITIES)
        server = load_certificates(files[SERVER_CERT])[0]
        key = load_key(files[SERVER_KEY])
    except InvalidPem as err:
        return [Finding(Level.FAIL, f"the set cannot be used: {err}")]
    found = [
        _match(server, key, SERVER_KEY, SERVER_CERT),
        _issued(server, authorities, SERVER_CERT),
        _usage(server, ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth", SERVER_CERT),
        _strength(key, SERVER_KEY),
        _validity(server, SERVER_CERT, now),
        *(_validity(authority, CA, now) for authority in authorities),
        *(_covers(server, host) for host in hosts),
    ]
    if "cert.pem" in files and "key.pem" in files:
        try:
            client, client_key = load_certificates(files["cert.pem"])[0], load_key(files["key.pem"])
        except InvalidPem as err:
            return [*found, Finding(Level.FAIL, f"the client pair cannot be used: {err}")]
        found += [
            _match(client, client_key, "key.pem", "cert.pem"),
            _issued(client, authorities, "cert.pem"),
            _usage(client, ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth", "cert.pem"),
            _validity(client, "cert.pem", now),
        ]
    return found


def _match(certificate: x509.Certificate, key: PrivateKeyTypes, key_name: str, cert_name: str) -> Finding:
    if _same_key(certificate.public_key(), key):
        return Finding(Level.OK, f"{key_name} matches {cert_name}")
    return Finding(Level.FAIL, f"{key_name} does not match {cert_name}")


def _issued(certificate: x509.Certificate, authorities: list[x509.Certificate], name: str) -> Finding:
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue  # not this CA
        return Finding(Level.OK, f"{name} is issued by the CA ({authority.subject.rfc4514_string()})")
    return Finding(Level.FAIL, f"{name} is not issued by any certificate in {CA}")


def _usage(certificate: x509.Certificate, oid: x509.ObjectIdentifier, word: str, name: str) -> Finding:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return Finding(Level.WARN, f"{name} has no extendedKeyUsage; Docker's recipe gives it {word}")
    if oid in usages:
        return Finding(Level.OK, f"{name} has extendedKeyUsage {word}")
    return Finding(Level.FAIL, f"{name} lacks extendedKeyUsage {word}: TLS peers will refuse it")


def _strength(key: PrivateKeyTypes, name: str) -> Finding:
    if isinstance(key, rsa.RSAPrivateKey):
        size, minimum, kind = key.key_size, MIN_RSA_BITS, "RSA"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        size, minimum, kind = key.curve.key_size, MIN_EC_BITS, f"EC {key.curve.name}"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return Finding(Level.OK, f"{name} is Ed25519")
    else:
        return Finding(Level.FAIL, f"{name} is a key type dockerd cannot serve TLS with")
    if size < minimum:
        return Finding(Level.FAIL, f"{name} is {kind} {size} bits; use at least {minimum}")
    return Finding(Level.OK, f"{name} is {kind} {size} bits")


def _validity(certificate: x509.Certificate, name: str, now: datetime.datetime) -> Finding:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        return Finding(Level.FAIL, f"{name} is not valid before {start:%Y-%m-%d %H:%M} UTC")
    if now > end:
        return Finding(Level.FAIL, f"{name} expired on {end:%Y-%m-%d %H:%M} UTC")
    if end - now < EXPIRY_WARNING:
        return Finding(Level.WARN, f"{name} expires soon, on {end:%Y-%m-%d} UTC")
    return Finding(Level.OK, f"{name} is valid until {end:%Y-%m-%d} UTC")


def _covers(certificate: x509.Certificate, host: str) -> Finding:
    names = subject_alternative_names(certificate)
    try:
        wanted = str(ipaddress.ip_address(host))
    except ValueError:
        wanted = host.lower()
    if wanted in [name.lower() for name in names]:
        return Finding(Level.OK, f"{SERVER_CERT} names {host}")
    return Finding(Level.FAIL, f"{SERVER_CERT} does not name {host} (its SANs: {', '.join(names) or 'none'})")


def summary(files: Mapping[str, bytes | None], now: datetime.datetime | None = None) -> dict[str, object]:
    """Per file what it is, and the findings for the set: never key material, and never an error.

    Whatever is stored is described: a file that cannot be used (stored by an older
    release, or put there by hand) is reported with the reason instead.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    result: dict[str, object] = {}
    unusable = []
    for name, data in files.items():
        entry: dict[str, object] = {"present": data is not None}
        if data is not None:
            try:
                entry |= (
                    _describe_key(load_key(data)) if name == SERVER_KEY else _describe_certs(data, _content(name), now)
                )
            except InvalidPem as err:
                entry["error"] = str(err)
                unusable.append(Finding(Level.FAIL, f"{name} cannot be used: {err}"))
        result[name] = entry
    stored = {name: data for name, data in files.items() if data is not None}
    found = unusable or findings(stored, now=now)
    result["findings"] = [{"level": f.level.value, "message": f.message} for f in found]
    refusal = dockerd_refusal(stored)
    result["dockerd_would_start"] = refusal is None and len(stored) == len(files)
    if refusal:
        result["dockerd_refusal"] = refusal
    return result


def _content(name: str) -> Content:
    return Content.AUTHORITIES if name == CA else Content.CERTIFICATES


def _describe_certs(data: bytes, content: Content, now: datetime.datetime) -> dict[str, object]:
    certificates = load_certificates(data, content)
    described = []
    for certificate in certificates:
        facts = describe_certificate(certificate)
        facts["days_left"] = (certificate.not_valid_after_utc - now).days
        described.append(facts)
    return {"certificates": described}


def _describe_key(key: PrivateKeyTypes) -> dict[str, object]:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    # Which key it is, by its public half: enough to match it to a certificate.
    return {**key_shape(key.public_key()), "public_key_sha256": hashlib.sha256(spki).hexdigest()}
