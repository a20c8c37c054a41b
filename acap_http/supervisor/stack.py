"""What dockerd runs in and on, kept for the application's lifetime: the namespace
holder, containerd inside it, and (rootless) the port forwards through the holder.

dockerd restarts; this stays. Its processes report their exits to the supervisor
like dockerd's; the supervisor decides what follows (``core``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from acap_http.filestore import FileStore
from acap_http.supervisor import command, daemon_json, versions
from acap_http.supervisor.command import Command, Host
from acap_http.supervisor.ports import Forwards
from acap_http.supervisor.runner import Exit, Process, Runner
from acap_http.supervisor.settings import Settings

logger = logging.getLogger(__name__)

# The holder and containerd are up in tens of milliseconds; these bound a start that hangs.
HOLDER_TIMEOUT = 10.0
CONTAINERD_TIMEOUT = 10.0
POLL = 0.005

OnExit = Callable[[Process, Exit], None]


class StackLike(Protocol):
    """What the supervisor needs of the stack (``stack.Stack``; tests give a stand-in)."""

    data_root: Path | None
    holder_pid: int  # a process in the containers' PID namespace (0: none)

    @property
    def processes(self) -> list[Process]: ...

    def up(self, data_root: Path, cancel: threading.Event) -> None: ...
    def lost(self, process: Process) -> None: ...
    def containerd_keeps_containers(self) -> bool: ...
    def holder_alive(self) -> bool: ...
    def dockerd_command(self, settings: Settings) -> Command: ...
    def refresh_config(self) -> None: ...
    def before_dockerd(self, settings: Settings, cancel: threading.Event) -> None: ...


class StackError(OSError):
    """The holder, containerd or a port forward did not come up (or the bring-up was cancelled)."""


class Stack:
    """Started and waited for by the bring-up's worker (``bringup``); read by the supervisor
    thread only when no bring-up runs."""

    def __init__(
        self, host: Host, runner: Runner, on_exit: OnExit, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.host = host
        self._runner = runner
        self._on_exit = on_exit
        self._clock = clock
        self.holder: Process | None = None
        self.holder_pid = 0  # where nsenter enters: the holder's child (rootless) or its init (rootful)
        self.containerd: Process | None = None
        self.data_root: Path | None = None
        self._keeps_containers: bool | None = None  # asked of containerd once, where it matters

    @property
    def processes(self) -> list[Process]:
        """Those running, in the order they stop: containerd, then the holder."""
        return [process for process in (self.containerd, self.holder) if process is not None]

    def up(self, data_root: Path, cancel: threading.Event) -> None:
        """Start what is missing of the holder and containerd; StackError if one does not come up,
        or as soon as ``cancel`` is set."""
        if self.data_root is not None and data_root != self.data_root and self.containerd is not None:
            raise StackError(f"containerd runs on {self.data_root}; stop it before moving to {data_root}")
        if self.holder is None:
            self._start_holder(cancel)
        if self.containerd is None:
            self._start_containerd(data_root, cancel)

    def holder_alive(self) -> bool:
        """Whether the namespaces are still there: the holder runs, and so does the process nsenter enters."""
        return self.holder is not None and self.holder.alive and _running(self.holder_pid)

    def containerd_keeps_containers(self) -> bool:
        """Whether a containerd started again finds the running containers: rootful (cgroups)
        always; rootless (no cgroups) only before 1.7, which drops the shims whose processes
        runc cannot list."""
        if self._keeps_containers is None:
            if not self.host.rootless:
                self._keeps_containers = True
            else:
                version = versions.of("containerd", self.host.path)
                self._keeps_containers = versions.UNKNOWN < version < versions.DROPS_SHIMS_WITHOUT_PIDS
                if not self._keeps_containers:
                    logger.warning(
                        "containerd %s drops the containers it cannot list the processes of when it starts again, "
                        "and without cgroups it cannot: should containerd die, everything restarts (containers stop)",
                        versions.show(version),
                    )
        return self._keeps_containers

    def lost(self, process: Process) -> None:
        """``process`` (the holder or containerd) has exited; forget it (the holder takes all with it)."""
        if process is self.holder:
            self.holder, self.holder_pid, self.containerd = None, 0, None
        elif process is self.containerd:
            self.containerd = None

    def dockerd_command(self, settings: Settings) -> Command:
        assert self.data_root is not None and self.holder_pid, "the stack is not up"
        host = self.host
        config = daemon_json.effective(host.daemon_json, host.runtime_dir, lambda: versions.of("dockerd", host.path))
        return command.dockerd(
            settings, host, self.data_root, self.holder_pid, daemon_json_sets=daemon_json.keys(host.daemon_json),
            config_file=config.config_file, extra_env=config.env,
        )  # fmt: skip

    def refresh_config(self) -> None:
        """Before a running dockerd reads its config file again (SIGHUP): the copy made for a
        dockerd before 23 (proxies) says what the operator's file says now."""
        host = self.host
        daemon_json.effective(host.daemon_json, host.runtime_dir, lambda: versions.of("dockerd", host.path))

    def before_dockerd(self, settings: Settings, cancel: threading.Event) -> None:
        """Rootless: only the API port stays forwarded; dead proxies' forwards go."""
        if self.host.rootless:
            forwards = Forwards(self.host.rootlesskit_dir / "api.sock", clock=self._clock, cancel=cancel)
            try:
                forwards.keep_only(command.api_forward(settings, self.host))
            except OSError as err:
                raise StackError(f"cannot forward dockerd's port: {err}") from err

    def _start_holder(self, cancel: threading.Event) -> None:
        if self.host.rootless:
            shutil.rmtree(self.host.rootlesskit_dir, ignore_errors=True)  # a dead holder's state
        holder = self._runner.start(command.holder(self.host), self._on_exit, name="namespace holder")
        self.holder = holder

        def entered() -> bool:
            self.holder_pid = self._holder_child(holder)
            return bool(self.holder_pid)

        # Not cut short by a cancel: rootlesskit stopped before it is up dies at once, leaving its
        # child and slirp4netns to the host's init; up (tens of ms), it stops them itself.
        self._wait_for("the namespace holder", holder, entered, HOLDER_TIMEOUT, cancel=None)
        logger.info("Namespace holder up (pid %d; dockerd and containerd run in pid %d's)", holder.pid, self.holder_pid)

    def _holder_child(self, holder: Process) -> int:
        if self.host.rootless:
            state = self.host.rootlesskit_dir
            try:
                pid = int((state / "child_pid").read_text().strip() or 0)
            except (OSError, ValueError):
                return 0
            return pid if (state / "api.sock").is_socket() else 0
        try:  # unshare forked tini, the init of the new PID namespace
            children = psutil.Process(holder.pid).children()
        except psutil.Error:
            return 0
        return children[0].pid if children else 0

    def _start_containerd(self, data_root: Path, cancel: threading.Event) -> None:
        host = self.host
        FileStore(host.containerd_dir, directory_mode=0o700).write(
            host.containerd_config.name, command.containerd_config(host, data_root).encode(), 0o600
        )
        (data_root / "containerd").mkdir(parents=True, exist_ok=True)
        process = self._runner.start(
            command.containerd(host, self.holder_pid), self._on_exit, name="containerd", owns_tree=False
        )
        self.containerd, self.data_root = process, data_root
        self._wait_for("containerd", process, lambda: _accepts(host.containerd_socket), CONTAINERD_TIMEOUT, cancel)
        logger.info("containerd up (pid %d) on %s", process.program_pid, data_root)
        self.containerd_keeps_containers()  # said at the first start, not when it is too late

    def _wait_for(
        self, what: str, process: Process, ready: Callable[[], bool], timeout: float, cancel: threading.Event | None
    ) -> None:
        """Until ``ready()``; StackError when ``process`` dies, at ``timeout``, or once ``cancel`` is set."""
        deadline = self._clock() + timeout
        while not ready():
            if cancel is not None and cancel.is_set():
                raise StackError(f"{what}: the start was cancelled")
            if not process.alive or self._clock() > deadline:
                raise StackError(f"{what} did not come up ({process.exit or 'timed out'})")
            process.wait(POLL)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError:
            return False
        return True
