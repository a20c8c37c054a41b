"""Hostile uploads through the real front: each gets a 4xx promptly, the
stored file stays as it was, and the app keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import multipart, pki
from tests.e2e.front import PREFIX, Answer, Front

# curl gives up after this long: a hang fails the test instead of stalling the run.
MAX_SECONDS = "10"


@pytest.fixture(scope="module")
def stored_ca(front: Front, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A good ca.pem, stored before the attacks."""
    ca = tmp_path_factory.mktemp("good") / "ca.pem"
    ca.write_bytes(pki.server_set().ca)
    assert front.upload("ca.pem", ca).status == 204
    return ca.read_bytes()


def _post_body(front: Front, tmp_path: Path, body: bytes, boundary: str = multipart.BOUNDARY) -> Answer:
    source = tmp_path / "body"
    source.write_bytes(body)
    return front.curl(
        "--max-time",
        MAX_SECONDS,
        "-H",
        f"Content-Type: {multipart.content_type(boundary)}",
        "--data-binary",
        f"@{source}",
        path=PREFIX + "ca.pem",
    )


def _short_body(front: Front, tmp_path: Path) -> Answer:
    body = multipart.body(multipart.part("file", b"x" * 100, "ca.pem"))
    headers = {"Content-Type": multipart.content_type(), "Content-Length": str(len(body) + 5000)}
    return front.raw("POST", PREFIX + "ca.pem", headers, body, timeout=float(MAX_SECONDS))


# Each attack with the answer the README's table promises for it.
ATTACKS: dict[str, tuple[Callable[[Front, Path], Answer], int]] = {
    "5000 tiny parts": (lambda front, tmp: _post_body(front, tmp, multipart.many_tiny_parts(5000)), 413),
    "71-character boundary": (
        lambda front, tmp: _post_body(
            front, tmp, multipart.body(multipart.part("file", b"x", "ca.pem"), boundary="b" * 71), boundary="b" * 71
        ),
        400,
    ),
    "CR LF then megabytes without newline": (
        lambda front, tmp: _post_body(front, tmp, multipart.long_line_part(megabytes=3)),
        413,
    ),
    "no closing boundary": (
        lambda front, tmp: _post_body(front, tmp, multipart.body(multipart.part("file", b"x", "ca.pem"), close=False)),
        422,
    ),
    "body shorter than its Content-Length": (_short_body, 408),
}


@pytest.mark.parametrize(("attack", "code"), ATTACKS.values(), ids=ATTACKS.keys())
def test_hostile_upload_is_refused_and_harmless(
    front: Front, stored_ca: bytes, tmp_path: Path, attack: Callable[[Front, Path], Answer], code: int
) -> None:
    """A hostile body gets its own 4xx, ca.pem keeps its bytes, and a good upload works right after."""
    answer = attack(front, tmp_path)
    assert answer.status == code, answer
    assert (front.localdata / "ca.pem").read_bytes() == stored_ca
    good = tmp_path / "ca.pem"
    good.write_bytes(stored_ca)
    assert front.upload("ca.pem", good).status == 204
