"""Who is at the other end of a TCP connection from this host itself: the local user whose socket
it is, read from the kernel's socket tables (``/proc/net/tcp``, ``tcp6``). serve's front counts
failed logins of local users apart, so that a rootless container (which reaches the host as the
app's user, through slirp4netns) does not lock out an administrator on the host itself.

A connection is found by its whole 4-tuple, seen from the client's side (its address and port,
then the server's), in the ESTABLISHED state, and only when exactly one row says so: connected
sockets may share an ephemeral port towards other destinations, and a local user who can read
the tables could otherwise have someone else's connection counted as his. The table is searched
for the client's endpoint as the kernel prints it before anything is parsed: a host with many
sockets costs a scan in C, not a parse in Python.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path

import psutil

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
ESTABLISHED = "01"
Endpoint = tuple[str, int]


def own_addresses() -> frozenset[str]:
    """This host's addresses: loopback and those of its interfaces."""
    found = {"127.0.0.1", "::1"}
    for entries in psutil.net_if_addrs().values():
        found |= {entry.address.partition("%")[0] for entry in entries
                  if entry.family in (socket.AF_INET, socket.AF_INET6)}  # fmt: skip
    return frozenset(str(ipaddress.ip_address(address)) for address in found)


def is_local(address: str, own: Iterable[str]) -> bool:
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    parsed = getattr(parsed, "ipv4_mapped", None) or parsed
    return parsed.is_loopback or str(parsed) in own


def local_uid(client: Endpoint, server: Endpoint, tables: Iterable[Path] = TABLES) -> int | None:
    """The uid owning the local socket connected from ``client`` to ``server`` (each an address and
    a port); None unless exactly one established connection is that one."""
    found: list[int] = []
    for table, (local, remote) in zip(tables, (_ipv4(client, server), _ipv6(client, server)), strict=True):
        if local is None or remote is None:
            continue
        try:
            text = table.read_text()
        except OSError:
            continue
        pattern = rf"^\s*\d+: {re.escape(local)} {re.escape(remote)} {ESTABLISHED} \S+ \S+ \S+\s+(\d+) "
        found += [int(uid) for uid in re.findall(pattern, text, re.MULTILINE)]
    return found[0] if len(found) == 1 else None


def _ipv4(client: Endpoint, server: Endpoint) -> tuple[str | None, str | None]:
    """Both endpoints as /proc/net/tcp prints IPv4 ones (address bytes reversed, upper-case hex)."""
    return _printed(client, 4), _printed(server, 4)


def _ipv6(client: Endpoint, server: Endpoint) -> tuple[str | None, str | None]:
    return _printed(client, 6), _printed(server, 6)


def _printed(endpoint: Endpoint, version: int) -> str | None:
    try:
        address = ipaddress.ip_address(endpoint[0].partition("%")[0])
    except ValueError:
        return None
    if version == 4:
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is None:
                return None
            address = address.ipv4_mapped
        raw = address.packed[::-1]
    else:
        if isinstance(address, ipaddress.IPv4Address):
            address = ipaddress.IPv6Address(f"::ffff:{address}")  # a v4 client of a dual-stack listener
        packed = address.packed
        raw = b"".join(packed[index : index + 4][::-1] for index in range(0, 16, 4))
    return f"{raw.hex().upper()}:{endpoint[1]:04X}"
