"""The dockerd supervisor: one thread owns dockerd and the supervisor's state.

HTTP threads, parameter observers and signal handlers only post events to
its queue; the thread takes them one at a time. Restart requests carry a
sequence number, so those already covered by the settings snapshot of the
current start are dropped: a burst of them makes one restart.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acap_http import mounts
from acap_http.status import Status
from acap_http.supervisor import command as command_module
from acap_http.supervisor import housekeeping, probe, sdcard
from acap_http.supervisor.command import Command, Host
from acap_http.supervisor.runner import STOP_GRACE, Exit, Process, Runner
from acap_http.supervisor.sdcard import WAIT_FOR_CARD, CardWatcher
from acap_http.supervisor.settings import Settings, check

logger = logging.getLogger(__name__)


# rootlesskit passes dockerd's exit code on, but a dockerd killed by a signal
# has none: Go's ExitStatus() is -1 and rootlesskit exits with 255.
ROOTLESSKIT_CHILD_SIGNALED = 255


class Phase(enum.Enum):
    IDLE = "idle"  # no dockerd: not started yet, a check failed, or it reported an error
    STARTING = "starting"  # spawned, not answering yet
    RUNNING = "running"
    WAITING = "waiting"  # a (re)start is scheduled
    STOPPED = "stopped"  # shut down for good


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts after unexpected stops, so a crash loop does not spin."""

    base: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0  # a run at least this long forgets earlier crashes

    def delay(self, crashes: int) -> float:
        """The first unexpected stop restarts at once; then 1, 2, 4 … seconds up to the cap."""
        return 0.0 if crashes <= 1 else min(self.base * 2 ** (crashes - 2), self.cap)


@dataclass(frozen=True)
class _Restart:
    reason: str
    seq: int
    at_once: bool  # the first start waits for nothing; a change waits a moment for others of its burst


@dataclass(frozen=True)
class _Exited:
    process: Process
    exit: Exit


@dataclass(frozen=True)
class _Answering:
    process: Process


@dataclass(frozen=True)
class _CardChanged:
    present: bool


@dataclass(frozen=True)
class _Shutdown:
    pass


_Event = _Restart | _Exited | _Answering | _CardChanged | _Shutdown


class Supervisor:
    def __init__(
        self,
        *,
        read_settings: Callable[[], Settings],
        host: Host,
        set_status: Callable[[Status], None],
        runner: Runner | None = None,
        answers: Callable[[Settings, Host], bool] = probe.answers,
        build: Callable[[Settings, Host, Path], Command] = command_module.build,
        backoff: Backoff | None = None,
        coalesce: float = 0.02,
        stop_grace: float = STOP_GRACE,
        card: CardWatcher | None = None,
    ) -> None:
        self._read_settings = read_settings
        self.host = host
        self._set_status = set_status
        self._runner = runner or Runner()
        self._answers = answers
        self._build = build
        self._backoff = backoff or Backoff()
        self._coalesce = coalesce
        self._stop_grace = stop_grace
        self._card = card
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._seq_lock = threading.Lock()
        self._seq = 0
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        # Owned by the supervisor thread alone from here on.
        self.phase = Phase.IDLE
        self._process: Process | None = None
        self._data_root: Path | None = None
        self._running_settings: Settings | None = None
        self._uses_card = False
        self._card_moved = False
        self._applied = 0
        self._due: float | None = None
        self._crashes = 0
        self._started_at = 0.0

    # --- called from any thread: they only post -------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._post_restart("application started", at_once=True)

    def request_restart(self, reason: str) -> None:
        """Restart dockerd with the settings and files as they are now (also starts it)."""
        self._post_restart(reason, at_once=False)

    def _post_restart(self, reason: str, at_once: bool) -> None:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        self._events.put(_Restart(reason, seq, at_once))

    def card_changed(self, present: bool) -> None:
        """The SD card came or went (called by the card watcher)."""
        self._events.put(_CardChanged(present))

    def shutdown(self) -> None:
        """Stop dockerd and the supervisor; returns when both are gone."""
        self._events.put(_Shutdown())
        self._thread.join()

    # --- the supervisor thread ---------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self.phase is Phase.STOPPED

    def _loop(self) -> None:
        while not self.stopped:
            timeout = None if self._due is None else max(0.0, self._due - time.monotonic())
            try:
                event: _Event | None = self._events.get(timeout=timeout)
            except queue.Empty:
                event = None  # the scheduled (re)start is due
            try:
                if event is None:
                    self._due = None
                    self._restart()
                else:
                    self._handle(event)
            except Exception:
                logger.exception("Supervisor failed handling %s", event or "a due restart")
                if not self.stopped and self._process is None:
                    self._transition(Phase.IDLE, "failed")
                    self._set_status(Status.DOCKERD_RUNTIME_ERROR)

    def _handle(self, event: _Event) -> None:
        match event:
            case _Restart(reason, seq, at_once) if seq > self._applied:
                logger.info("dockerd restart requested: %s", reason)
                self._crashes = 0  # an operator's change deserves a prompt start
                delay = 0.0 if at_once else self._coalesce
                if self._due is None or self._due > time.monotonic() + delay:
                    self._due = time.monotonic() + delay
                    if self.phase is Phase.IDLE:
                        self._transition(Phase.WAITING, "restart scheduled")
            case _Restart(reason, _, _):
                logger.debug("Restart request already covered by the running settings: %s", reason)
            case _Answering(process) if process is self._process and self.phase is Phase.STARTING:
                process.remember_descendants()  # containerd has started by now
                self._transition(Phase.RUNNING, f"dockerd answers (pid {process.pid})")
                self._set_status(Status.RUNNING)
            case _Exited(process, exit) if process is self._process:
                self._exited(exit)
            case _CardChanged(present) if self._uses_card:
                # Gone: dockerd stops before its storage is missed; back: it starts again.
                logger.info(
                    "SD card %s; %s dockerd", "back" if present else "gone", "starting" if present else "stopping"
                )
                self._card_moved = True
                self._due = time.monotonic()
                if self.phase is Phase.IDLE:
                    self._transition(Phase.WAITING, "SD card changed")
            case _Shutdown():
                self._due = None
                try:
                    self._stop_dockerd("application stopping")
                finally:
                    self._transition(Phase.STOPPED, "application stopping")
            case _:
                pass  # news of a process already stopped on purpose

    def _exited(self, exit: Exit) -> None:
        assert self.phase in (Phase.STARTING, Phase.RUNNING), self.phase
        self._process = None
        housekeeping.release_mounts(self.host, self._data_root)
        if self.host.rootless and exit.code == ROOTLESSKIT_CHILD_SIGNALED:
            exit = Exit(code=None, signal=0)  # dockerd under rootlesskit died by a signal
        if exit.failed:
            logger.error(
                "dockerd exited with %s; not restarting it until a setting changes or a TLS file is uploaded",
                exit,
            )
            self._transition(Phase.IDLE, "dockerd failed")
            self._set_status(Status.DOCKERD_RUNTIME_ERROR)
            return
        if time.monotonic() - self._started_at >= self._backoff.stable_after:
            self._crashes = 0
        self._crashes += 1
        delay = self._backoff.delay(self._crashes)
        logger.warning("dockerd stopped (%s); restarting in %.1f s", exit, delay)
        self._set_status(Status.DOCKERD_STOPPED)
        self._due = time.monotonic() + delay
        self._transition(Phase.WAITING, "dockerd stopped")

    def _restart(self) -> None:
        card_moved, self._card_moved = self._card_moved, False
        if self._keeps_serving(card_moved):
            return
        # From here until dockerd answers (or a check says why not), Status says a
        # (re)start is under way, so that nobody reads an old answer as the new one.
        self._set_status(Status.DOCKERD_STOPPED)
        self._stop_dockerd("restarting")
        with self._seq_lock:
            self._applied = self._seq
        settings = self._read_settings()
        self._uses_card = settings.sd_card
        blocked = check(settings, self.host.localdata) or (self._check_card() if settings.sd_card else None)
        if blocked is not None:
            self._transition(Phase.IDLE, f"not starting dockerd: {blocked}")
            self._set_status(blocked)
            return
        data_root = self._card.place.data_root if settings.sd_card and self._card else self.host.localdata / "data"
        command = self._build(settings, self.host, data_root)
        logger.debug("Starting %s", " ".join(command.argv))
        try:
            housekeeping.prepare(self.host, data_root)
            process = self._runner.start(command, lambda p, e: self._events.put(_Exited(p, e)))
        except OSError as err:
            # dockerd could not even be started (a program or directory missing):
            # like an error dockerd reports, it needs the operator.
            logger.error("Cannot start dockerd: %s", err)
            self._transition(Phase.IDLE, "start failed")
            self._set_status(Status.DOCKERD_RUNTIME_ERROR)
            return
        self._process, self._data_root, self._started_at = process, data_root, time.monotonic()
        self._running_settings = settings
        self._transition(Phase.STARTING, f"dockerd started (pid {process.pid})")
        threading.Thread(target=self._watch_answer, args=(process, settings), daemon=True).start()

    def _keeps_serving(self, card_moved: bool) -> bool:
        """Whether a serving dockerd stays as it is: when only TLS files changed (same settings,
        same card) and dockerd would refuse them. One-file-at-a-time rotation passes through
        such sets; a serving dockerd is not traded for one that cannot start."""
        running = self._running_settings
        if self._process is None or running is None or card_moved or self._read_settings() != running:
            return False
        refused = check(running, self.host.localdata) is Status.TLS_CERT_INVALID
        if refused:
            logger.warning("Not restarting dockerd; it keeps serving with the TLS files it started with")
        return refused

    def _check_card(self) -> Status | None:
        if self._card is None:
            logger.warning("SDCardSupport is on, but this host has no SD card configured")
            return Status.NO_SD_CARD
        self._card.wait_present(WAIT_FOR_CARD)
        return sdcard.check(self._card.place, mounts.read())

    def _watch_answer(self, process: Process, settings: Settings) -> None:
        """Post once dockerd answers; dockerd has no readiness signal, so ask every 20 ms."""
        while process.alive:
            if self._answers(settings, self.host):
                self._events.put(_Answering(process))
                return
            process.wait(0.02)

    def _stop_dockerd(self, why: str) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        logger.info("Stopping dockerd (pid %d): %s", process.pid, why)
        exit = process.stop(self._stop_grace)
        logger.info("dockerd stopped (%s)", exit)
        housekeeping.release_mounts(self.host, self._data_root)

    def _transition(self, to: Phase, why: str) -> None:
        logger.debug("Supervisor %s -> %s: %s", self.phase.value, to.value, why)
        self.phase = to
