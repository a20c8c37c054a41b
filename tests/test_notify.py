"""sd_notify's datagrams: delivered to the socket systemd names, and never waited for."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from acap_http.servers.notify import Notifier


def test_states_reach_the_socket(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as reader:
        reader.bind(str(tmp_path / "notify"))
        Notifier(str(tmp_path / "notify")).send("READY=1\nSTATUS=0 RUNNING")
        assert reader.recv(4096) == b"READY=1\nSTATUS=0 RUNNING"


def test_a_reader_that_does_not_read_never_holds_the_sender(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The supervisor sends Status as it changes: a full queue drops the state (a warning) instead
    of blocking the supervisor, which a stop would then wait for forever."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as reader:
        reader.bind(str(tmp_path / "notify"))
        notifier = Notifier(str(tmp_path / "notify"))

        def send_many() -> None:
            for n in range(2000):
                notifier.send(f"STATUS={n}")

        sender = threading.Thread(target=send_many)
        sender.start()
        sender.join(10)
        assert not sender.is_alive()
    assert "Could not tell systemd 'STATUS=" in caplog.text


def test_no_socket_no_notification() -> None:
    Notifier(None).send("READY=1")  # outside systemd: nothing to do, nothing raised
