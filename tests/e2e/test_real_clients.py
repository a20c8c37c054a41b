"""Clients nobody here wrote, against the real front: Ansible's own uri module, as a new user of
the product would use it (digest authentication, a multipart upload with its defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import pki
from tests.e2e.front import PREFIX, Front


def _uri(front: Front, tmp_path: Path, **args: object) -> dict[str, object]:
    """One ansible.builtin.uri call from the controller; its result."""
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCALHOST_WARNING="false")
    command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "ansible.builtin.uri",
               "-a", json.dumps(args), "-o"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    _, _, result = done.stdout.partition("=> ")
    assert result, done.stdout + done.stderr
    parsed: dict[str, object] = json.loads(result)
    return parsed


def test_uri_lists_settings_with_digest(front: Front, tmp_path: Path) -> None:
    result = _uri(
        front, tmp_path, url=f"{front.url}/axis-cgi/param.cgi?action=list&group=root.dockerdwrapper.UseTLS",
        url_username="admin", url_password=front.password, return_content=True,
    )  # fmt: skip
    assert (result["status"], result["content"]) == (200, "root.dockerdwrapper.UseTLS=yes\r\n")


def test_uri_uploads_a_file_with_its_defaults(front: Front, tmp_path: Path) -> None:
    """form-multipart with nothing else said: uri sends the file base64-encoded, and it is stored as is."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.server_set().ca)
    result = _uri(
        front, tmp_path, url=f"{front.url}{PREFIX}ca.pem", method="POST", url_username="admin",
        url_password=front.password, body_format="form-multipart", body={"file": {"filename": str(ca)}},
        status_code=[204],
    )  # fmt: skip
    assert result["status"] == 204, result
    assert (front.localdata / "ca.pem").read_bytes() == ca.read_bytes()
