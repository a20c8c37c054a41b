"""The local user behind a connection from this host, read off the kernel's tables: the whole
4-tuple of an established connection, never another connection that shares its port."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

from acap_http.servers import peers


def _listener(address: str) -> socket.socket:
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen()
    return listener


def test_the_owner_of_an_established_connection_is_found() -> None:
    with _listener("127.0.0.1") as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        try:
            assert peers.local_uid(client.getsockname(), accepted.getsockname()) == os.geteuid()
            assert peers.local_uid(client.getsockname(), ("127.0.0.1", 1)) is None  # another server: none
        finally:
            client.close()
            accepted.close()


def test_a_connection_sharing_the_port_towards_another_server_is_not_taken_for_it() -> None:
    """A socket of another user from the same address and port to another destination (the kernel
    allows it): the admin's connection is still his; the stranger's never counts as it."""
    with _listener("127.0.0.1") as ours, _listener("127.0.0.2") as theirs:
        mine = socket.socket()
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mine.bind(("127.0.0.1", 0))
        port = mine.getsockname()[1]
        code = (
            "import socket, sys, time\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('127.0.0.1', {port})); s.connect({theirs.getsockname()!r}); print('ok', flush=True)\n"
            "sys.stdin.read()\n"
        )
        stranger = subprocess.Popen([sys.executable, "-c", code], user="nobody", stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert stranger.stdout is not None and stranger.stdout.readline() == "ok\n"
            their_end, _ = theirs.accept()
            mine.connect(ours.getsockname())
            accepted, _ = ours.accept()
            client = ("127.0.0.1", port)
            assert peers.local_uid(client, accepted.getsockname()) == os.geteuid()
            assert peers.local_uid(client, their_end.getsockname()) == pwd.getpwnam("nobody").pw_uid
            accepted.close()
            their_end.close()
        finally:
            assert stranger.stdin is not None and stranger.stdout is not None
            stranger.stdin.close()
            stranger.stdout.close()
            stranger.wait(10)
            mine.close()


def test_tables_as_the_kernel_prints_them(tmp_path: Path) -> None:
    """IPv6 rows (four reversed words) and IPv4 rows; two rows for one 4-tuple are no answer."""
    v4, v6 = tmp_path / "tcp", tmp_path / "tcp6"
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    v4.write_text(header + "   0: 0100007F:A000 0100007F:20FB 01 00000000:00000000 00:00000000 00000000   997 0 1\n")
    v6.write_text(header + "   0: 00000000000000000000000001000000:A001 00000000000000000000000001000000:20FB 01 "
                  "00000000:00000000 00:00000000 00000000  1001 0 2\n")  # fmt: skip
    assert peers.local_uid(("127.0.0.1", 0xA000), ("127.0.0.1", 8443), (v4, v6)) == 997
    assert peers.local_uid(("::1", 0xA001), ("::1", 8443), (v4, v6)) == 1001
    assert peers.local_uid(("127.0.0.1", 0xA000), ("127.0.0.2", 8443), (v4, v6)) is None
    v4.write_text(v4.read_text() + "   1: 0100007F:A000 0100007F:20FB 01 00000000:00000000 00:00000000 00000000"
                  "   0 0 3\n")  # fmt: skip
    assert peers.local_uid(("127.0.0.1", 0xA000), ("127.0.0.1", 8443), (v4, v6)) is None
