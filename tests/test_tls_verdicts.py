"""The verdict on a stored TLS set: the same from a child as in-process, kept by content, and a
long-lived process that has not read X.509 yet does not load cryptography to judge one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acap_http.tls import verdicts
from tests import pki

GOOD = pki.server_set().by_name()
MISMATCHED = {**GOOD, "server-key.pem": pki.server_set().server_key}


@pytest.fixture(autouse=True)
def fresh_verdicts() -> Iterator[None]:
    verdicts._verdicts.clear()
    yield
    verdicts._verdicts.clear()


@pytest.mark.parametrize("files", [GOOD, MISMATCHED, {**GOOD, "ca.pem": b"not a PEM"}], ids=["good", "mismatch", "bad"])
def test_the_child_says_what_this_process_would(files: dict[str, bytes]) -> None:
    assert verdicts._in_child(files) == verdicts._here(files)


def test_a_verdict_is_kept_by_content(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, bytes]] = []

    def judge(files: dict[str, bytes]) -> str:
        asked.append(dict(files))
        return "refused"

    monkeypatch.setattr(verdicts, "_here", judge)
    monkeypatch.setattr(verdicts, "_in_child", judge)
    assert verdicts.refusal(GOOD) == verdicts.refusal(dict(GOOD)) == "refused"
    assert len(asked) == 1
    assert verdicts.refusal(MISMATCHED) == "refused"
    assert len(asked) == 2


def test_the_verdicts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotation a day for years does not grow the process: the oldest verdicts go first."""
    asked: list[bytes] = []

    def judge(files: dict[str, bytes]) -> str:
        asked.append(files["ca.pem"])
        return "refused"

    monkeypatch.setattr(verdicts, "_here", judge)
    monkeypatch.setattr(verdicts, "_in_child", judge)
    for number in range(verdicts.KEPT + 10):
        verdicts.refusal({**GOOD, "ca.pem": b"%d" % number})
    assert len(verdicts._verdicts) == verdicts.KEPT
    verdicts.refusal({**GOOD, "ca.pem": b"%d" % (verdicts.KEPT + 9)})  # the newest: kept
    verdicts.refusal({**GOOD, "ca.pem": b"0"})  # the oldest: judged again
    assert asked[-1] == b"0" and len(asked) == verdicts.KEPT + 11


def test_a_failing_child_is_judged_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert verdicts._in_child(MISMATCHED) == "server-key.pem does not match server-cert.pem"


def test_a_process_without_cryptography_judges_in_a_child(tmp_path: Path) -> None:
    """As ``run`` does before each dockerd start: the verdict, and cryptography still not loaded."""
    for name, data in MISMATCHED.items():
        (tmp_path / name).write_bytes(data)
    script = (
        "import sys; from pathlib import Path; from acap_http.tls.store import TlsStore\n"
        f"print(TlsStore(Path({str(tmp_path)!r})).refusal()); print('cryptography' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["server-key.pem does not match server-cert.pem", "False"]
