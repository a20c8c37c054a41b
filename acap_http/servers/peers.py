"""Who is at the other end of a TCP connection from this host itself: the local user whose socket
it is, read from the kernel's socket tables (``/proc/net/tcp``, ``tcp6``). serve's front counts
failed logins of local users apart, so that a rootless container (which reaches the host as the
app's user, through slirp4netns) does not lock out an administrator on the host itself."""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

import psutil

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def own_addresses() -> frozenset[str]:
    """This host's addresses: loopback and those of its interfaces."""
    found = {"127.0.0.1", "::1"}
    for entries in psutil.net_if_addrs().values():
        found |= {
            entry.address.partition("%")[0] for entry in entries if entry.family in (socket.AF_INET, socket.AF_INET6)
        }
    return frozenset(str(ipaddress.ip_address(address)) for address in found)


def is_local(address: str, own: Iterable[str]) -> bool:
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    parsed = getattr(parsed, "ipv4_mapped", None) or parsed
    return parsed.is_loopback or str(parsed) in own


def local_uid(client: tuple[str, int], server_port: int, tables: Iterable[Path] = TABLES) -> int | None:
    """The uid owning the local socket ``client`` (address, port) connected to ``server_port``; None
    if no table shows it (not local, or gone)."""
    try:
        wanted = ipaddress.ip_address(client[0].partition("%")[0])
    except ValueError:
        return None
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            local, remote = _endpoint(fields[1]), _endpoint(fields[2])
            if local is None or remote is None or local[1] != client[1] or remote[1] != server_port:
                continue
            address = local[0]
            address = getattr(address, "ipv4_mapped", None) or address
            if address == (getattr(wanted, "ipv4_mapped", None) or wanted):
                return int(fields[7])
    return None


def _endpoint(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int] | None:
    """``0100007F:1F90`` (IPv4, the kernel's byte order) or 32 hex digits (IPv6) and a port."""
    address, _, port = text.partition(":")
    try:
        raw = bytes.fromhex(address)
        if len(raw) == 4:
            parsed: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(raw[::-1])
        elif len(raw) == 16:
            parsed = ipaddress.IPv6Address(b"".join(struct.pack("<I", *struct.unpack(">I", raw[i : i + 4]))
                                                    for i in range(0, 16, 4)))  # fmt: skip
        else:
            return None
        return parsed, int(port, 16)
    except ValueError:
        return None
