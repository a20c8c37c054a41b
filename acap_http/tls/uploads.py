"""The checks an upload of a TLS file must pass (pure; the files are in ``files``).

``validate`` parses an upload as
dockerd (Go's ``encoding/pem`` and ``crypto/tls``) would and returns the bytes
to store, line endings normalised, or raises InvalidPem with the reason.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from acap_http.errors import InvalidPem
from acap_http.escape import printable
from acap_http.tls.certificates import READ_ERRORS, Unreadable, describe_certificate, key_refusal, public_key
from acap_http.tls.files import Content, TlsFile

# The labels of a key file and the DER each says it holds. Go reads any "… PRIVATE KEY" label and
# tries every format; the original product checks the label, and so do we, and the label must
# say what the DER is, so that every tool (OpenSSL, cryptography, Go) reads the file alike.
KEY_LABELS: Mapping[str, str] = MappingProxyType(
    {"PRIVATE KEY": "PKCS#8", "RSA PRIVATE KEY": "PKCS#1", "EC PRIVATE KEY": "SEC 1"}
)
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
    if tls_file.content is Content.PRIVATE_KEY:
        _private_key(blocks)
    else:
        _certificates(blocks, tls_file.content)
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
                    f"The {printable(label)} in the block on line {start} is encrypted; dockerd has no "
                    "passphrase to open it. Decrypt it with 'openssl pkey -in FILE -out FILE'."
                )
            return PemBlock(label, tuple(headers), _decode_body(body, start), start), index
        if line.startswith("-----"):
            raise InvalidPem(f"Line {index} should be '{printable(end_marker)}' to close the block on line {start}.")
        if not body and _HEADER_LINE.fullmatch(line):
            headers.append(line)
        elif _BASE64_LINE.fullmatch(line):
            body.append(line)
        elif line:
            raise InvalidPem(f"Line {index} is not base64 (block starting on line {start}).")
    raise InvalidPem(f"The block starting on line {start} has no '{printable(end_marker)}' line.")


def _decode_body(body: list[str], start: int) -> bytes:
    try:
        der = base64.b64decode("".join(body), validate=True)
    except binascii.Error:
        raise InvalidPem(f"The base64 of the block on line {start} is malformed.") from None
    if not der:
        raise InvalidPem(f"The block on line {start} is empty.")
    try:
        end = der_element_end(der)
    except ValueError as err:
        raise InvalidPem(f"The block on line {start} does not decode to DER data ({err}).") from None
    if der[0] != DER_SEQUENCE:
        raise InvalidPem(f"The block on line {start} does not decode to DER data (it is not a SEQUENCE).")
    if end != len(der):
        raise InvalidPem(f"The block on line {start} has {len(der) - end} stray bytes after its DER data.")
    return der


DER_SEQUENCE = 0x30


def der_element_end(der: bytes) -> int:
    """Where the first DER element (tag, length, contents) ends; ValueError if it cannot.

    Only the frame: certificates and keys are SEQUENCEs, and what is inside is
    cryptography's to read. Enough to tell junk from DER and to find bytes after it.
    """
    _, _, end = der_element(der, 0)
    return end


def der_element(der: bytes, start: int) -> tuple[int, int, int]:
    """(tag byte, start of contents, end) of the DER element at ``start``; ValueError if it cannot be."""
    index = start + 1
    if len(der) < start + 2:
        raise ValueError("too short")
    if der[start] & 0x1F == 0x1F:  # a tag number in the bytes that follow
        while index < len(der) and der[index] & 0x80:
            index += 1
        index += 1
    if index >= len(der):
        raise ValueError("truncated length")
    first = der[index]
    index += 1
    if first == 0x80:
        raise ValueError("indefinite length, which DER does not allow")
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count > 4 or index + count > len(der):
            raise ValueError("bad length")
        length = int.from_bytes(der[index : index + count], "big")
        index += count
    if index + length > len(der):
        raise ValueError(f"its length says {length} bytes, {len(der) - index} follow")
    return der[start], index, index + length


def serial_is_positive(der: bytes) -> bool:
    """Whether a certificate's serial number is above zero, read from its DER (RFC 5280 wants it so;
    Go, the docker CLI's language, refuses negative ones, and cryptography warns on both).
    True when the frame cannot be followed: parsing the certificate then says what is wrong."""
    try:
        _, tbs, _ = der_element(der, 0)
        _, field, _ = der_element(der, tbs)
        tag, _, end = der_element(der, field)
        if tag == 0xA0:  # [0] version, before the serial
            field = end
        tag, contents, end = der_element(der, field)
    except ValueError:
        return True
    if tag != 0x02 or contents == end:  # not an INTEGER: cryptography will say so
        return True
    return der[contents] & 0x80 == 0 and any(der[contents:end])


def read_certificates(data: bytes, content: Content) -> list[x509.Certificate]:
    """Every certificate of a PEM file, read in full and fit for dockerd, or InvalidPem saying why not."""
    return _certificates(parse_pem(_as_text(data)), content)


def _certificates(blocks: list[PemBlock], content: Content) -> list[x509.Certificate]:
    """A CA file's keys only verify signatures; a certificate file's first key also signs handshakes."""
    return [
        _certificate(block, signs_handshakes=content is Content.CERTIFICATES and index == 0)
        for index, block in enumerate(blocks)
    ]


def read_private_key(data: bytes) -> PrivateKeyTypes:
    """The private key of a PEM key file, fit for dockerd, or InvalidPem saying why not."""
    return _private_key(parse_pem(_as_text(data)))


def _certificate(block: PemBlock, *, signs_handshakes: bool) -> x509.Certificate:
    if block.label != CERTIFICATE_LABEL:
        raise InvalidPem(_wrong_label(block, "a CERTIFICATE"))
    if block.headers:
        raise InvalidPem(f"The certificate on line {block.line} has PEM headers; dockerd expects none.")
    if not serial_is_positive(block.der):
        raise InvalidPem(
            f"The certificate on line {block.line} has a serial number that is not positive, which RFC 5280 "
            "forbids and the docker CLI (Go) refuses; issue it anew."
        )
    try:
        certificate = x509.load_der_x509_certificate(block.der)
    except READ_ERRORS:
        raise InvalidPem(f"The block on line {block.line} is not an X.509 certificate.") from None
    try:
        describe_certificate(certificate)
        refusal = key_refusal(public_key(certificate), signs_handshakes=signs_handshakes)
    except Unreadable as err:
        raise InvalidPem(f"The certificate on line {block.line} {err}.") from None
    if refusal:
        raise InvalidPem(f"The certificate on line {block.line} holds {refusal}.")
    return certificate


def _private_key(blocks: list[PemBlock]) -> PrivateKeyTypes:
    if len(blocks) != 1:
        raise InvalidPem(f"The file holds {len(blocks)} PEM blocks; a key file holds one private key.")
    (block,) = blocks
    if block.label not in KEY_LABELS:
        raise InvalidPem(_wrong_label(block, "a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY"))
    if block.headers:
        raise InvalidPem(f"The key on line {block.line} has PEM headers; dockerd expects none.")
    try:
        # Read without OpenSSL's check of an RSA key's primes: it costs seconds for a large key
        # (30 s at 16,384 bits, the GIL held). The size is judged first, then the key is checked
        # as Go checks it (below), which takes microseconds at any size.
        key = serialization.load_pem_private_key(_pem(block), password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        raise InvalidPem("The private key is encrypted; dockerd has no passphrase to open it.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidPem(_unreadable_key(block)) from None
    refusal = key_refusal(key.public_key())
    if refusal:
        raise InvalidPem(f"The key is {refusal}.")
    if isinstance(key, rsa.RSAPrivateKey) and not rsa_key_consistent(key.private_numbers()):
        raise InvalidPem("The RSA key is inconsistent: its numbers do not make one key (dockerd would refuse it).")
    return key


def rsa_key_consistent(numbers: rsa.RSAPrivateNumbers) -> bool:
    """What Go's rsa.PrivateKey.Validate checks: primes above 1 whose product is the modulus,
    and d inverting e modulo each prime less one; and the CRT values OpenSSL signs with."""
    p, q, d, e = numbers.p, numbers.q, numbers.d, numbers.public_numbers.e
    if p <= 1 or q <= 1 or p * q != numbers.public_numbers.n:
        return False
    if (d * e) % (p - 1) != 1 or (d * e) % (q - 1) != 1:
        return False
    return numbers.dmp1 == d % (p - 1) and numbers.dmq1 == d % (q - 1) and (numbers.iqmp * q) % p == 1


def _unreadable_key(block: PemBlock) -> str:
    """Why a key block does not read under its label: another format, or no key at all."""
    try:
        key = serialization.load_der_private_key(block.der, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        return "The private key is encrypted; dockerd has no passphrase to open it."
    except (ValueError, UnsupportedAlgorithm):
        return f"The {block.label} block does not hold a readable private key."
    refusal = key_refusal(key.public_key())
    if refusal:
        return f"The key is {refusal}."
    return (
        f"The {block.label} label says {KEY_LABELS[block.label]}, but the key is in another format; "
        "rewrite it with 'openssl pkey -in FILE -out FILE' (PKCS#8, labelled PRIVATE KEY)."
    )


def _pem(block: PemBlock) -> bytes:
    body = base64.encodebytes(block.der).decode("ascii")
    return f"-----BEGIN {block.label}-----\n{body}-----END {block.label}-----\n".encode("ascii")


def _wrong_label(block: PemBlock, wanted: str) -> str:
    label = printable(block.label)
    if block.label == "TRUSTED CERTIFICATE":
        return (
            f"The block on line {block.line} is an OpenSSL TRUSTED CERTIFICATE, which dockerd cannot "
            "read; export it with 'openssl x509 -in FILE -out FILE'."
        )
    if block.label == "ENCRYPTED PRIVATE KEY":
        return "The private key is encrypted; dockerd has no passphrase to open it."
    if wanted == "a CERTIFICATE" and block.label.endswith("PRIVATE KEY"):
        return f"The block on line {block.line} is a private key, not a certificate."
    if block.label == CERTIFICATE_LABEL:
        return f"The block on line {block.line} is a certificate, not a private key."
    if block.label == "DSA PRIVATE KEY":
        return f"The block on line {block.line} is a DSA key; dockerd serves TLS with RSA, ECDSA or Ed25519 keys."
    return f"The block on line {block.line} is a {label}; expected {wanted}."
