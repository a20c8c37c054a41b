# -*- coding: utf-8 -*-
# Copyright: acap-http developers
# Apache License 2.0 (see LICENSE in the acap-http project)
"""The controller's PKI for a fleet's dockerd TLS sets, made with cryptography in one process: a CA
(made once), the operator's client pair and each host's server pair with its addresses in the SANs.
The decision (issue a pair again or keep it) is a pure function of what is on disk, kept apart from
the writing so it is tested alone."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False

CA_NAME = "ca"
CLIENT_NAME = "client"
# A new certificate is valid from a little before now: a host whose clock is behind accepts it.
BACKDATE = datetime.timedelta(minutes=5)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def paths(directory, name):
    """(certificate, key) paths of ``name`` in the PKI directory: ca.pem and ca-key.pem for the CA,
    NAME-cert.pem and NAME-key.pem for the others (as the rotation has always named them)."""
    if name == CA_NAME:
        return os.path.join(directory, "ca.pem"), os.path.join(directory, "ca-key.pem")
    return os.path.join(directory, name + "-cert.pem"), os.path.join(directory, name + "-key.pem")


def general_names(sans):
    """Addresses become IP names, anything else DNS names, in the order given."""
    names = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    return names


def not_after(certificate):
    """The end of validity, timezone-aware whatever cryptography's version."""
    if hasattr(certificate, "not_valid_after_utc"):
        return certificate.not_valid_after_utc
    return certificate.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _sans_of(certificate):
    try:
        return list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def reason_to_issue(certificate, key, ca_certificate, sans, renew_before, at):
    """Why the pair (loaded, or None where a file is missing or unreadable) must be issued again, or
    None to keep it: missing, expiring within ``renew_before`` days of ``at``, not from this CA, not
    this key's, or names that are not ``sans``."""
    if certificate is None or key is None:
        return "missing"
    if not_after(certificate) <= at + datetime.timedelta(days=renew_before):
        return "expires %s, within %d days" % (not_after(certificate).date().isoformat(), renew_before)
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by this CA"
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        return "the key is not the certificate's"
    if _sans_of(certificate) != general_names(sans):
        return "its names are not %s" % ", ".join(sans)
    return None


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject, issuer, public_key, days, at):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - BACKDATE)
        .not_valid_after(at + datetime.timedelta(days=days))
    )


def make_ca(key, common_name, days, at):
    """A self-signed CA that signs end certificates only (path length 0)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        _builder(name, name, key.public_key(), days, at)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def issue(ca_certificate, ca_key, key, common_name, sans, server, days, at):
    """An end certificate for ``key`` signed by the CA: serverAuth with ``sans`` for a host, clientAuth
    for the operator (``server`` false)."""
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            ca_certificate.subject,
            key.public_key(),
            days,
            at,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_certificate.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def certificate_pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_certificate(path):
    """The certificate at ``path``, or None if it is missing or unreadable (then it is issued again)."""
    try:
        with open(path, "rb") as source:
            return x509.load_pem_x509_certificate(source.read())
    except (IOError, OSError, ValueError):
        return None


def load_key(path):
    """The unencrypted private key at ``path``, or None if it is missing or unreadable."""
    try:
        with open(path, "rb") as source:
            return serialization.load_pem_private_key(source.read(), password=None)
    except (IOError, OSError, ValueError, TypeError):
        return None


def write_file(path, data, mode):
    """Write ``data`` to ``path`` with ``mode``, whole or not at all (a temporary file renamed over it)."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".pki-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as target:
            target.write(data)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
