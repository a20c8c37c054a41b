"""The systemd unit of ``acap-http serve``: its text, from values checked one by one and quoted
as systemd reads them (pure).

Every value that goes into the unit is the operator's: an address is parsed as one, a path must
be absolute and hold nothing systemd or a shell would read as syntax, and each argument of the
command line is quoted for systemd (``%`` is a specifier there, ``$`` a variable). A value with a
line break could otherwise write a line of its own, such as an ``ExecStartPre=`` of the caller's
choosing, into a file root runs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from acap_http import config, identity
from acap_http.errors import SetupError

UNIT = "acap-http.service"
DESCRIPTION = f"acap-http: {identity.FRIENDLY_NAME} ({identity.NAME}) managed over HTTPS"

# The hardening that rootless dockerd and its containers tolerate, each tried on its own and then
# together under a real systemd (the README's "Run it as a service" lists what was tried and what
# failed). ProtectSystem=strict leaves the data and dockerd's runtime directory writable, nothing
# else: install has made the app's user and the configuration, so serve writes nothing under /etc.
# Left out on purpose: what the containers inherit and would lose (a syscall filter, address
# families, W^X memory, setuid files, a capability bounding set: user namespaces do not lift it),
# ProtectHostname (their sethostname fails), ProtectHome (hides /run/user), NoNewPrivileges and
# RestrictNamespaces (newuidmap, rootlesskit), PrivateDevices (/dev/net/tun, /dev/fuse).
HARDENING = (
    "PrivateTmp=yes",
    "ProtectSystem=strict",
    "ProtectClock=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    "ProtectProc=invisible",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "UMask=0022",
)
# What a path of the unit may hold: no space (ReadWritePaths= is a list), quote, backslash,
# specifier, variable or control character.
PLAIN_PATH = re.compile(r"/[A-Za-z0-9._+,:@=/-]*")
HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class Places:
    prefix: Path  # the program: a virtual environment
    app_dir: Path  # the data: localdata, dockerd's data-root, params.json
    config_dir: Path  # users, the front's TLS pair, the admin's password
    unit_dir: Path  # where systemd reads units

    @property
    def unit(self) -> Path:
        return self.unit_dir / UNIT

    def checked(self) -> Places:
        """These places, each an absolute, plain path; SetupError naming the first that is not."""
        for option, path in (("--prefix", self.prefix), ("--app-dir", self.app_dir),
                             ("--config-dir", self.config_dir), ("--unit-dir", self.unit_dir)):  # fmt: skip
            plain_path(path, option)
        return self


def plain_path(path: Path, option: str) -> Path:
    text = str(path)
    if not PLAIN_PATH.fullmatch(text) or "/../" in f"{text}/" or "/./" in f"{text}/":
        raise SetupError(f"{option} {text!r}: give an absolute path of letters, digits and . _ + , : @ = - / (no '..')")
    return path


def address(text: str, option: str) -> str:
    """An IP address, as systemd and gunicorn will read it."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise SetupError(f"{option} {text!r} is not an IP address") from None


def listen(host: str, port: int) -> str:
    """HOST:PORT for gunicorn: an IP address (IPv6 in brackets) or a host name."""
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        if not HOST_NAME.fullmatch(host):
            raise SetupError(f"--listen {host!r}:{port}: the host is neither an IP address nor a host name") from None
        return f"{host}:{port}"
    return f"[{parsed}]:{port}" if parsed.version == 6 else f"{parsed}:{port}"


def quote(argument: str) -> str:
    """One argument of ExecStart=, as systemd splits and expands it."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in argument):
        raise SetupError(f"{argument!r} holds a control character; it cannot go into a unit")
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_./:@=+,%$\[\]-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command(places: Places, listen_on: str, docker_address: str, groups: tuple[str, ...] = ()) -> list[str]:
    """What the unit runs (unquoted)."""
    return [*_command(places, listen_on, docker_address), *(arg for name in groups for arg in ("--group", name))]


def _command(places: Places, listen_on: str, docker_address: str) -> list[str]:
    return [
        str(places.prefix / "bin" / "acap-http"), "serve", "--stdout",
        "--listen", listen_on, "--app-dir", str(places.app_dir), "--docker-address", docker_address,
        "--users", str(places.config_dir / "users"),
        "--cert", str(places.config_dir / "tls-cert.pem"), "--key", str(places.config_dir / "tls-key.pem"),
    ]  # fmt: skip


def unit(places: Places, listen_on: str, docker_address: str, groups: tuple[str, ...] = ()) -> str:
    """The systemd unit of the service."""
    lines = [
        "[Unit]",
        f"Description={DESCRIPTION}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        # Ready once the front accepts and Status is known; STATUS= mirrors Status. The worker tells.
        "Type=notify",
        "NotifyAccess=all",
        f"ExecStart={' '.join(quote(argument) for argument in command(places, listen_on, docker_address, groups))}",
        "TimeoutStartSec=120",
        *(f"Environment={name}={value}" for name, value in config.MALLOC_ARENAS.items()),
        # gunicorn gives the application's stop (containers, dockerd, containerd, the holder) and
        # the requests in flight SERVE_GRACEFUL_STOP, then kills the worker: more than that.
        f"TimeoutStopSec={config.SERVE_GRACEFUL_STOP + 15}",
        "KillMode=mixed",
        "Restart=on-failure",
        "RestartSec=2",
        *HARDENING,
        # What ProtectSystem=strict leaves writable: the data, and dockerd's runtime directory.
        f"ReadWritePaths={quote(str(places.app_dir))} /run/user",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def is_ours(text: str) -> bool:
    return f"Description={DESCRIPTION}" in text or "Description=acap-http: " in text
