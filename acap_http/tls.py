"""The TLS files dockerd needs and the checks an upload must pass (pure).

The table says, for each file name the manifest declares, what it holds, how
it is stored and which dockerd flag reads it. ``validate`` parses an upload as
dockerd (Go's ``encoding/pem`` and ``crypto/tls``) would and returns the bytes
to store, line endings normalised, or raises InvalidPem with the reason.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error

from acap_http.errors import InvalidPem


class Content(enum.Enum):
    CERTIFICATES = "certificates"
    PRIVATE_KEY = "private key"


@dataclass(frozen=True)
class TlsFile:
    name: str
    description: str  # as in the original's "File is not a valid <description>."
    content: Content
    mode: int  # file mode on disk: keys are private to the app's user
    dockerd_flag: str

    @property
    def invalid_sentence(self) -> str:
        return f"File is not a valid {self.description}."


TLS_FILES: Mapping[str, TlsFile] = MappingProxyType(
    {
        tls_file.name: tls_file
        for tls_file in (
            TlsFile("ca.pem", "CA certificate", Content.CERTIFICATES, 0o644, "--tlscacert"),
            TlsFile("server-cert.pem", "server certificate", Content.CERTIFICATES, 0o644, "--tlscert"),
            TlsFile("server-key.pem", "server key", Content.PRIVATE_KEY, 0o600, "--tlskey"),
        )
    }
)

# Labels dockerd reads in a key file; Go also parses the DER whatever the label says.
KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})
CERTIFICATE_LABEL = "CERTIFICATE"

_BEGIN = re.compile(r"-----BEGIN ([^-]*)-----")
_BASE64_LINE = re.compile(r"[A-Za-z0-9+/=]+")
_HEADER_LINE = re.compile(r"[A-Za-z0-9-]+:.*")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PemBlock:
    label: str
    headers: tuple[str, ...]
    der: bytes
    line: int  # 1-based line of the BEGIN marker, for messages


def validate(tls_file: TlsFile, data: bytes) -> bytes:
    """Return ``data`` as it should be stored, or raise InvalidPem saying why not."""
    text = _as_text(data)
    blocks = parse_pem(text)
    if tls_file.content is Content.CERTIFICATES:
        _check_certificates(blocks)
    else:
        _check_private_key(blocks)
    normalised = text.replace("\r\n", "\n")
    if not normalised.endswith("\n"):
        normalised += "\n"
    return normalised.encode("ascii")


def _as_text(data: bytes) -> str:
    if not data.strip():
        raise InvalidPem("The file is empty.")
    if data.startswith(_UTF8_BOM):
        raise InvalidPem("The file starts with a UTF-8 byte order mark; save it without one.")
    if data[:1] == b"\x30" or b"\0" in data:
        raise InvalidPem(
            "The file is binary (DER?), not PEM text; convert it with "
            "'openssl x509 -inform DER -in FILE -out FILE.pem' ('openssl pkey' for a key)."
        )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise InvalidPem(f"The file has a non-ASCII byte at offset {err.start}; PEM is ASCII text.") from None
    return text


def parse_pem(text: str) -> list[PemBlock]:
    """Split PEM text into blocks, strictly: only blank lines may stand outside them."""
    blocks: list[PemBlock] = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index].rstrip(" \t")
        index += 1
        if not line:
            continue
        begin = _BEGIN.fullmatch(line)
        if begin is None:
            where = "before the first -----BEGIN line" if not blocks else "outside the PEM blocks"
            raise InvalidPem(f"Line {index} has text {where}; the file must hold only PEM blocks.")
        block, index = _read_block(begin.group(1), lines, index)
        blocks.append(block)
    if not blocks:
        raise InvalidPem("The file holds no PEM block.")
    return blocks


def _read_block(label: str, lines: list[str], index: int) -> tuple[PemBlock, int]:
    start = index  # line number of the BEGIN marker (1-based) equals this 0-based index
    end_marker = f"-----END {label}-----"
    headers: list[str] = []
    body: list[str] = []
    while index < len(lines):
        line = lines[index].rstrip(" \t")
        index += 1
        if line == end_marker:
            if headers and any(h.replace(" ", "").upper() == "PROC-TYPE:4,ENCRYPTED" for h in headers):
                raise InvalidPem(
                    f"The {label} in the block on line {start} is encrypted; dockerd has no "
                    "passphrase to open it. Decrypt it with 'openssl pkey -in FILE -out FILE'."
                )
            return PemBlock(label, tuple(headers), _decode_body(body, start), start), index
        if line.startswith("-----"):
            raise InvalidPem(f"Line {index} should be '{end_marker}' to close the block on line {start}.")
        if not body and _HEADER_LINE.fullmatch(line):
            headers.append(line)
        elif _BASE64_LINE.fullmatch(line):
            body.append(line)
        elif line:
            raise InvalidPem(f"Line {index} is not base64 (block starting on line {start}).")
    raise InvalidPem(f"The block starting on line {start} has no '{end_marker}' line.")


def _decode_body(body: list[str], start: int) -> bytes:
    try:
        der = base64.b64decode("".join(body), validate=True)
    except binascii.Error:
        raise InvalidPem(f"The base64 of the block on line {start} is malformed.") from None
    if not der:
        raise InvalidPem(f"The block on line {start} is empty.")
    # pyasn1 reads any DER without a schema: it tells junk from a real
    # structure and finds bytes after it, which cryptography reports poorly.
    try:
        _, rest = der_decoder.decode(der)
    except PyAsn1Error:
        raise InvalidPem(f"The block on line {start} does not decode to DER data.") from None
    if rest:
        raise InvalidPem(f"The block on line {start} has {len(rest)} stray bytes after its DER data.")
    return der


def _check_certificates(blocks: list[PemBlock]) -> None:
    for block in blocks:
        if block.label != CERTIFICATE_LABEL:
            raise InvalidPem(_wrong_label(block, "a CERTIFICATE"))
        if block.headers:
            raise InvalidPem(f"The certificate on line {block.line} has PEM headers; dockerd expects none.")
        try:
            x509.load_der_x509_certificate(block.der)
        except ValueError:
            raise InvalidPem(f"The block on line {block.line} is not an X.509 certificate.") from None


def _check_private_key(blocks: list[PemBlock]) -> None:
    if len(blocks) != 1:
        raise InvalidPem(f"The file holds {len(blocks)} PEM blocks; a key file holds one private key.")
    (block,) = blocks
    if block.label not in KEY_LABELS:
        raise InvalidPem(_wrong_label(block, "a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY"))
    try:
        key = load_der_private_key(block.der, password=None)
    except TypeError:
        raise InvalidPem("The private key is encrypted; dockerd has no passphrase to open it.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidPem(f"The {block.label} block does not hold a readable private key.") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise InvalidPem("The key type is not one dockerd serves TLS with (RSA, ECDSA or Ed25519).")


def _wrong_label(block: PemBlock, wanted: str) -> str:
    if block.label == "TRUSTED CERTIFICATE":
        return (
            f"The block on line {block.line} is an OpenSSL TRUSTED CERTIFICATE, which dockerd cannot "
            "read; export it with 'openssl x509 -in FILE -out FILE'."
        )
    if block.label == "ENCRYPTED PRIVATE KEY":
        return "The private key is encrypted; dockerd has no passphrase to open it."
    if block.label.endswith("PRIVATE KEY"):
        return f"The block on line {block.line} is a private key, not a certificate."
    if block.label == CERTIFICATE_LABEL:
        return f"The block on line {block.line} is a certificate, not a private key."
    return f"The block on line {block.line} is a {block.label}; expected {wanted}."
