"""What a certificate or key is, read in full, and whether dockerd can serve TLS
with it: the key rule table (pure).

dockerd and the docker CLI are Go programs; their ``crypto/tls`` and
``crypto/x509`` decide, not OpenSSL. The table, from Go's sources and checked
against the real dockerd and docker CLI in ``tests/e2e/test_key_rules.py``:

- RSA of 1024 to 8192 bits: yes (``certs check`` fails it under 2048: too weak).
- RSA under 1024 bits: no. As the server's key it cannot sign a TLS 1.3 handshake
  (RSA-PSS wants a larger one); as a CA's key Go up to its 1.24 defaults verifies with it,
  but such a key can be factored, and whoever factors it signs client certificates
  dockerd trusts. Go 1.24 and later refuse it where the program asks for 1.24's defaults.
- RSA over 8192 bits: no; Go's crypto/tls refuses a peer's certificate with one
  (and checking such a key costs seconds: it is refused before anything is computed).
- RSA with a public exponent under 3 or over 2^31 - 1: no; Go's crypto/rsa refuses it.
- ECDSA on P-256, P-384, P-521: yes.
- ECDSA on P-224: as a CA's key yes (Go's crypto/x509 verifies signatures with it),
  as a key that signs handshakes (the server's) no: Go's crypto/tls cannot.
- ECDSA on any other curve (P-192, secp256k1, brainpool): no; Go does not parse the key.
- Ed25519: yes.
- Ed448, X25519, X448, DSA: no; Go's ``tls.X509KeyPair`` reads RSA, ECDSA and
  Ed25519 keys only.

The same rules hold for the CA's key, which only verifies: a client certificate
it signed must be verifiable by dockerd, and the server certificate by the docker CLI.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

# Go's crypto/tls signs handshakes with ECDSA on these curves only (named as cryptography names them);
# its crypto/x509 verifies signatures on P-224 too.
GO_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
GO_VERIFY_CURVES = {"secp224r1": "P-224", **GO_CURVES}
GO_MIN_RSA_BITS = 1024
GO_MAX_RSA_BITS = 8192  # crypto/tls's limit on a peer's RSA key
GO_MAX_RSA_EXPONENT = 2**31 - 1

# What cryptography raises on a structure it cannot read; lazily parsed parts of a
# certificate (extensions, the public key) raise only when first touched.
READ_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

_KIND_NAMES: tuple[tuple[type[object], str], ...] = (
    (dsa.DSAPublicKey, "DSA"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PublicKey, "X448"),
)


class Unreadable(ValueError):
    """A certificate part cryptography (and so this product) cannot read; the message says which."""


def key_shape(public: PublicKeyTypes) -> dict[str, object]:
    """Type and size of a key, for summaries."""
    if isinstance(public, rsa.RSAPublicKey):
        return {"key_type": "RSA", "key_size": public.key_size}
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = public.curve
        return {"key_type": f"EC {curve.name}", "key_size": curve.key_size}
    if isinstance(public, ed25519.Ed25519PublicKey):
        return {"key_type": "Ed25519", "key_size": 256}
    return {"key_type": _kind(public), "key_size": None}


def key_refusal(public: PublicKeyTypes, *, signs_handshakes: bool = True) -> str | None:
    """Why dockerd cannot serve TLS with this key (or, for a CA's, verify with it), per the table; None if it can."""
    if isinstance(public, rsa.RSAPublicKey):
        return _rsa_refusal(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        if signs_handshakes and public.curve.name not in GO_CURVES:
            return (
                f"an EC key on curve {public.curve.name}; dockerd (Go's crypto/tls) serves TLS with "
                f"{', '.join(GO_CURVES.values())} only"
            )
        if public.curve.name not in GO_VERIFY_CURVES:
            return (
                f"an EC key on curve {public.curve.name}; Go's crypto/x509 (dockerd, the docker CLI) "
                f"verifies signatures with {', '.join(GO_VERIFY_CURVES.values())} only"
            )
        return None
    if isinstance(public, ed25519.Ed25519PublicKey):
        return None
    curves = ", ".join(GO_CURVES.values())
    return f"a key of type {_kind(public)}; dockerd serves TLS with RSA, ECDSA ({curves}) or Ed25519"


def _rsa_refusal(public: rsa.RSAPublicKey) -> str | None:
    if public.key_size < GO_MIN_RSA_BITS:
        return (
            f"an RSA key of {public.key_size} bits; a key under {GO_MIN_RSA_BITS} bits can be factored "
            "(and Go 1.24 refuses it)"
        )
    if public.key_size > GO_MAX_RSA_BITS:
        return (
            f"an RSA key of {public.key_size} bits; Go's crypto/tls (dockerd, the docker CLI) refuses RSA "
            f"keys over {GO_MAX_RSA_BITS} bits"
        )
    exponent = public.public_numbers().e
    if not 3 <= exponent <= GO_MAX_RSA_EXPONENT:
        shown = exponent if exponent.bit_length() <= 64 else f"of {exponent.bit_length()} bits"
        return f"an RSA key with a public exponent {shown}; Go's crypto/rsa takes 3 to 2^31 - 1"
    return None


def _kind(public: object) -> str:
    return next((name for kind, name in _KIND_NAMES if isinstance(public, kind)), type(public).__name__)


def subject_alternative_names(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] + names.get_values_for_type(x509.DNSName)


def describe_certificate(certificate: x509.Certificate) -> dict[str, object]:
    """Everything a summary shows of a certificate, reading every part of it; Unreadable if one fails."""
    try:
        return {
            "subject": certificate.subject.rfc4514_string(),
            "issuer": certificate.issuer.rfc4514_string(),
            "extensions": [extension.oid.dotted_string for extension in certificate.extensions],
            "subject_alternative_names": subject_alternative_names(certificate),
            "not_valid_before": certificate.not_valid_before_utc.isoformat(),
            "not_valid_after": certificate.not_valid_after_utc.isoformat(),
            "sha256_fingerprint": certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
            **key_shape(public_key(certificate)),
        }
    except Unreadable:
        raise
    except READ_ERRORS as err:
        raise Unreadable(f"it cannot be read in full ({type(err).__name__}: {err})") from None


def public_key(certificate: x509.Certificate) -> PublicKeyTypes:
    """The certificate's public key; Unreadable when its algorithm is unknown here."""
    try:
        return certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        oid = certificate.public_key_algorithm_oid.dotted_string
        raise Unreadable(
            f"its public key algorithm ({oid}) is not one dockerd serves TLS with (RSA, ECDSA, Ed25519)"
        ) from None
