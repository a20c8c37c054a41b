"""The command line fails with one line and exit code 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.front import free_port

CLI = (sys.executable, "-m", "acap_http")


def _run(*args: str, env: dict[str, str] | None = None, user: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [*CLI, *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)


def _one_line_error(done: subprocess.CompletedProcess[str], phrase: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acap-http: ") and phrase in lines[0], done.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    assert _run("certs", "init", "--host", "127.0.0.1", "--out", str(out), "--key-type", "ec").returncode == 0
    return out


def test_push_to_an_unreachable_url(certs: Path) -> None:
    """Nothing listens there: one line naming the URL and the reason."""
    url = f"http://127.0.0.1:{free_port()}"
    done = _run("certs", "push", "--url", url, "--user", "admin", "--dir", str(certs), env={"ACAP_HTTP_PASSWORD": "x"})
    _one_line_error(done, f"cannot reach {url}: ")


def test_push_of_a_directory_without_the_files(tmp_path: Path) -> None:
    done = _run("certs", "push", "--url", "http://127.0.0.1:1", "--user", "admin", "--dir", str(tmp_path))
    _one_line_error(done, "lacks ca.pem, server-cert.pem, server-key.pem")


def test_push_without_a_password_or_a_terminal(certs: Path) -> None:
    done = _run("certs", "push", "--url", "http://127.0.0.1:1", "--user", "admin", "--dir", str(certs), env={})
    _one_line_error(done, "no password: set ACAP_HTTP_PASSWORD")


def test_init_into_an_unwritable_directory(tmp_path: Path) -> None:
    """A directory the user may not write: one line, nothing half made."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    tmp_path.chmod(0o755)
    done = _run("certs", "init", "--host", "127.0.0.1", "--out", str(locked / "certs"), user=65534)
    _one_line_error(done, f"cannot write the certificates to {locked / 'certs'}: Permission denied")


def test_init_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = _run("certs", "init", "--host", "127.0.0.1", "--out", str(tmp_path / "file" / "certs"))
    _one_line_error(done, "cannot write the certificates to")
