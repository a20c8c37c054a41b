"""Reading file uploads (``curl -F file=@ca.pem``) within fixed limits.

werkzeug parses the multipart body; this module sets its limits, makes its
parse errors loud instead of silent, and turns each failure into an answer.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import IO

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Request

from acap_http.escape import printable
from acap_http.handlers.responses import HttpError

UPLOAD_FAILED = "Upload to temporary file failed."
MAX_BOUNDARY = 70  # RFC 2046, section 5.1.1


@dataclass(frozen=True)
class UploadLimits:
    # A PEM certificate chain or an RSA 4096 key is a few KiB: 64 KiB leaves
    # room for a CA bundle while keeping a hostile body cheap to refuse.
    max_body: int = 64 * 1024
    max_parts: int = 8


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str
    data: bytes


def _in_memory(
    total_content_length: int | None,
    content_type: str | None,
    filename: str | None,
    content_length: int | None = None,
) -> IO[bytes]:
    return io.BytesIO()


def read_file_parts(request: Request, limits: UploadLimits) -> list[FilePart]:
    """The file parts of a multipart/form-data request, or an HttpError saying what is wrong."""
    if request.mimetype != "multipart/form-data":
        raise HttpError(415, f"{UPLOAD_FAILED} Send the file as multipart/form-data (curl -F file=@NAME).")
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise HttpError(400, f"{UPLOAD_FAILED} The multipart/form-data body has no boundary.")
    if len(boundary) > MAX_BOUNDARY:
        raise HttpError(400, f"{UPLOAD_FAILED} The multipart boundary is longer than {MAX_BOUNDARY} characters.")
    if request.content_length is None:
        raise HttpError(411, f"{UPLOAD_FAILED} The request has no Content-Length.")
    too_large = HttpError(
        413, f"{UPLOAD_FAILED} The upload exceeds the limit of {limits.max_body} bytes or {limits.max_parts} parts."
    )
    if request.content_length > limits.max_body:
        raise too_large
    request.max_content_length = limits.max_body
    parser = FormDataParser(
        # Parts are at most max_body bytes: keep them in memory, never on disk.
        stream_factory=_in_memory,
        max_content_length=limits.max_body,
        max_form_memory_size=limits.max_body,
        max_form_parts=limits.max_parts,
        silent=False,
    )
    try:
        _, _, files = parser.parse(request.stream, request.mimetype, request.content_length, request.mimetype_params)
    except RequestEntityTooLarge:
        raise too_large from None
    except TimeoutError:
        raise HttpError(408, f"{UPLOAD_FAILED} The body did not come in time.") from None
    except ValueError as err:
        raise HttpError(422, f"{UPLOAD_FAILED} The multipart body is malformed ({err}).") from None
    return [
        # A part without a name has the field None: it is "", which no endpoint takes.
        FilePart(
            field or "",
            storage.filename or "",
            _decoded(storage.read(), storage.headers.get(TRANSFER_ENCODING), field or ""),
        )
        for field, storage in files.items(multi=True)
    ]


TRANSFER_ENCODING = "Content-Transfer-Encoding"
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


def _decoded(data: bytes, encoding: str | None, field: str) -> bytes:
    """A part's content with its Content-Transfer-Encoding (RFC 2045) undone: Ansible's
    ``uri`` module sends files in base64 unless told otherwise."""
    kind = (encoding or "").strip().lower()
    if kind in IDENTITY_ENCODINGS:
        return data
    if kind == "base64":
        try:
            return base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            raise HttpError(
                400, f"{UPLOAD_FAILED} The part '{printable(field)}' says base64 but its content is not base64."
            ) from None
    if kind == "quoted-printable":
        return binascii.a2b_qp(data)
    raise HttpError(
        400,
        f"{UPLOAD_FAILED} The part '{printable(field)}' has Content-Transfer-Encoding '{printable(kind)}'; "
        "send it as is, in base64 or quoted-printable.",
    )
