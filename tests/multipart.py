"""Hand-built multipart/form-data bodies, well-formed or hostile, for the upload tests."""

from __future__ import annotations

BOUNDARY = "acap-http-test-boundary"


def part(field: str | None, data: bytes, filename: str | None = None, headers: str = "") -> bytes:
    """One part (``field`` None: without a name); ``headers`` are extra header lines, each ending in CR LF."""
    disposition = "form-data" + (f'; name="{field}"' if field is not None else "")
    disposition += f'; filename="{filename}"' if filename else ""
    return (
        f"Content-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n{headers}\r\n".encode()
        + data
        + b"\r\n"
    )


def body(*parts: bytes, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    out = b"".join(f"--{boundary}\r\n".encode() + p for p in parts)
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def content_type(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def many_tiny_parts(count: int = 5000) -> bytes:
    return body(*(part(f"f{i}", b"x") for i in range(count)))


def long_line_part(megabytes: int = 3) -> bytes:
    """A file part whose content starts with CR LF and then never has another newline."""
    return body(part("file", b"\r\n" + b"A" * (megabytes * 1024 * 1024), "ca.pem"), close=False)
