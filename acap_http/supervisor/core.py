"""The dockerd supervisor: one thread owns dockerd, the stack under it and the
supervisor's state (a start's bring-up has the stack while it runs, and reports).

HTTP threads, parameter observers, the card watcher and signal handlers only
post events to its queue; the thread takes them one at a time, and waits for
nothing else: a stop's deadline and the card's 5 s are timers in the same
loop, and a start's bring-up (the stack, then dockerd) and its TLS verdict run in
workers that report back (``bringup``), so a Shutdown is taken at once. Every
change of phase goes through ``_transition``, checked against the table in
``phases``; the phase says what follows a stop, and Status is the phase's in
that module's one table (an idle one's reason aside): nothing else writes it.
Restart requests carry a sequence number, so those already
covered by the settings snapshot of the current start are dropped: a burst
of them makes one restart.

A restart replaces dockerd only: containerd and the namespace holder stay,
and with live-restore the containers run on. The application's stop, a new
data-root (the card) and a dead holder stop everything.
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Protocol

import psutil

from acap_http import mounts
from acap_http.apifront.context import server_context
from acap_http.apifront.proxy import Listen
from acap_http.config import STOP_GRACE
from acap_http.escape import printable
from acap_http.status import Status
from acap_http.supervisor import docker_api, housekeeping, output, sdcard, versions
from acap_http.supervisor.bringup import BringUp
from acap_http.supervisor.command import Host
from acap_http.supervisor.daemon_json import live_restore_on
from acap_http.supervisor.events import (
    BRING_UP,
    CONTAINERS,
    OUTPUT,
    Answering,
    CardChanged,
    Cause,
    ContainersStopped,
    Counts,
    Event,
    Exited,
    FrontFailed,
    Judged,
    NoCounts,
    OutputHeld,
    Reload,
    Restart,
    Shutdown,
    StackFailed,
    StackUp,
    Step,
)
from acap_http.supervisor.loop import EventLoop
from acap_http.supervisor.phases import STOPPING, Backoff, Phase, Timer, check_transition, status_of
from acap_http.supervisor.runner import Exit, Process, Runner
from acap_http.supervisor.sdcard import WAIT_FOR_CARD, CardWatcher
from acap_http.supervisor.settings import Settings, check
from acap_http.supervisor.stack import Stack, StackLike
from acap_http.tls.store import TlsStore
from acap_http.tls.verdicts import NotJudged

logger = logging.getLogger(__name__)

# From the API's front's failure to its new start: 1 s, doubled at each failure that follows within
# a minute of the last start, up to a minute, so that a fault that comes back does not spin.
FRONT_RETRY, FRONT_RETRY_MAX, FRONT_HELD = 1.0, 60.0, 60.0


class ApiFront(Protocol):
    """What the supervisor needs of the Docker API's front (``apifront.proxy.Front``)."""

    def use(self, listen: Listen | None) -> None: ...

    @property
    def failed(self) -> bool: ...

    @property
    def reachable(self) -> bool: ...

    def revive(self) -> None: ...


class Supervisor(EventLoop[Event, Timer]):
    def __init__(
        self,
        *,
        read_settings: Callable[[], Settings],
        host: Host,
        set_status: Callable[[Status], None],
        runner: Runner | None = None,
        stack: StackLike | None = None,
        answers: Callable[[], bool] | None = None,
        backoff: Backoff | None = None,
        coalesce: float = 0.005,
        quiet: float = 0.02,
        stop_grace: float = STOP_GRACE,
        card: CardWatcher | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch_ready: Callable[[Process, Callable[[], None]], None] | None = None,
        stop_containers: Callable[[float], int] | None = None,
        hold_output: Callable[[], output.Hold] | None = None,
        in_background: Callable[[str, Callable[[], None]], None] | None = None,
        tls: TlsStore | None = None,
        front: ApiFront | None = None,
        counts: Counts | None = None,
    ) -> None:
        super().__init__("supervisor", clock)
        self._counts = counts or NoCounts()
        self._read_settings = read_settings
        self.host = host
        self._set_status = set_status
        self._runner = runner or Runner(clock)
        self.stack: StackLike = stack or Stack(host, self._runner, self._post_exit, clock)
        self._tls = tls or TlsStore(host.localdata)
        self._front = front  # with --tls-by front: it serves the TCP socket while dockerd answers
        self._answers = answers or (lambda: docker_api.answers(host.control_socket))
        self._watch_ready = watch_ready or partial(docker_api.watch_ready, self._answers)
        self._stop_containers = stop_containers or partial(docker_api.stop_containers, host.control_socket)
        self._hold_output = hold_output or (lambda: output.OutputHold(self.stack.holder_pid, self.stack.data_root))
        # Steps that wait on others (the bring-up, the TLS verdict, the containers' stop, dockerd
        # logging what it took) run in workers and post their news, so that this thread waits for
        # nothing. The workers live as long as the supervisor: the kernel sends a child its parent-
        # death signal (setpriv --pdeathsig) when the thread that started it ends.
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="supervisor-worker")
        self._in_background = in_background or self._in_a_worker
        self._backoff = backoff or Backoff()
        self._coalesce = coalesce
        # After a stop for a change, the start waits until changes have been quiet this long: a
        # burst reaches us over a few tens of ms (threads, TLS), and dockerd 26 stops in 13 ms;
        # what arrives before the start is in it, and the burst is one restart.
        self._quiet = quiet
        self._last_change = float("-inf")
        self._stop_grace = stop_grace
        self._card = card
        self._seq_lock = threading.Lock()
        self._seq = 0
        # Owned by the supervisor thread alone from here on.
        self.phase = Phase.NEW
        self._status: Status | None = None
        self._front_down = False  # the API's front failed and is not back yet: clients cannot reach dockerd
        self._front_failures = 0  # in a row: each came within FRONT_HELD of the front's last start
        self._front_started = float("-inf")
        self._reason: Status | None = None  # why an idle supervisor waits for the operator (its Status)
        self._dockerd: Process | None = None
        self._live_restore = True  # the running dockerd's: it leaves the containers running when it stops
        self._hold: output.Hold | None = None  # the containers' output, held while dockerd stops
        self._running_settings: Settings | None = None
        self._applied = 0
        self._crashes = 0
        self._started_at = 0.0
        self._full = False  # the next start brings the whole stack up anew (new data-root, dead holder)
        self._uses_card = False
        self._steps: list[Step] = []  # what a stop still has to stop, in order
        self._stopping: Process | None = None
        self._bring_up: BringUp | None = None  # while it runs, the stack is its worker's
        self._deferred: list[Event] = []  # exits heard during a bring-up, taken once it has reported
        self._start_due = False  # a start came due during a bring-up: it follows the bring-up
        self._judging: object | None = None  # the TLS files' verdict a start waits for is being made
        # Why dockerd is to start again, and since when (the first change or crash since the last
        # start); taken as the cause of the dockerd a start brings up, counted once that one answers.
        self._pending: tuple[Cause, float] | None = None
        self._starting: tuple[Cause, float] | None = None
        self._stack_broken = False  # containerd died and is started again with dockerd: no reload will do

    # --- called from any thread: they only post -------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._post_restart("application started", at_once=True)

    def request_restart(self, reason: str, cause: Cause = Cause.SETTING) -> None:
        """Restart dockerd with the settings and files as they are now (also starts it)."""
        self._post_restart(reason, at_once=False, cause=cause)

    def _post_restart(self, reason: str, at_once: bool, cause: Cause | None = None) -> None:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        self.post(Restart(reason, seq, at_once, self._now(), cause))

    def reload_config(self, reason: str) -> bool:
        """daemon.json changed only in what dockerd reloads on SIGHUP: a reload when dockerd runs, a
        restart otherwise (or if it is found not running by then). Whether a reload is on its way."""
        running = self.phase is Phase.RUNNING
        self.post(Reload(reason))
        return running

    def dockerd_argv(self) -> list[str] | None:
        """The running dockerd's command line from ``dockerd`` on (what nsenter's come before it);
        None when none runs. Any thread may ask: it reads a snapshot."""
        process = self._dockerd
        if process is None or not process.alive:
            return None
        try:
            argv = psutil.Process(process.program_pid).cmdline()
        except psutil.Error:
            return None
        starts = [i for i, word in enumerate(argv) if Path(word).name == "dockerd"]
        return argv[starts[0] :] if starts else argv

    def front_failed(self) -> None:
        """The API's front failed (called from its thread)."""
        self.post(FrontFailed())

    def card_changed(self, present: bool) -> None:
        """The SD card came or went (called by the card watcher)."""
        self.post(CardChanged(present))

    def _post_exit(self, process: Process, exit: Exit) -> None:
        self.post(Exited(process, exit))

    def shutdown(self) -> None:
        """Stop the containers, dockerd and the stack; returns when all are gone."""
        self.post(Shutdown())
        self._thread.join()

    # --- the supervisor thread ---------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self.phase is Phase.STOPPED

    @property
    def finished(self) -> bool:
        return self.stopped

    def _failed(self) -> None:
        if self.phase not in (*STOPPING, Phase.STOPPED):
            self._cancel_timers()
            steps = [*self._dockerd_steps(), *self._stack_steps()]
            self._stop(steps, Phase.STOPPING_TO_IDLE, Status.DOCKERD_RUNTIME_ERROR)

    def _handle(self, event: Event) -> None:
        if self._bring_up is not None and isinstance(event, Exited):
            self._deferred.append(event)  # the worker sees its own processes die; this waits for its report
            return
        match event:
            case Restart(reason, seq, at_once, posted, cause):
                self._restart(reason, seq, at_once, posted, cause)
            case Reload(reason):
                self._reload(reason)
            case Answering(process) if process is self._dockerd and self.phase is Phase.STARTING:
                self._answering(process)
            case Exited(process, exit):
                self._exited(process, exit)
            case CardChanged(present):
                self._card_changed(present)
            case ContainersStopped(count) if self._stopping is None and self.phase in STOPPING:
                logger.info("Stopped %d containers", count) if count else None
                self._next_step()
            case OutputHeld(hold, logged) if hold is self._hold and self._stopping is None:
                if not logged:
                    logger.warning(
                        "dockerd was still logging the containers' output %.0f s after it was held "
                        "back; stopping it anyway: lines it had not logged yet are lost",
                        output.LIMIT,
                    )
                self._next_step()
            case StackUp() | StackFailed() | Judged() | FrontFailed():
                self._reported(event)
            case Shutdown():
                self._shutdown()
            case _:
                pass  # news of a process already stopped on purpose

    def _reported(self, event: StackUp | StackFailed | Judged | FrontFailed) -> None:
        """News of a worker's, or of the API's front."""
        match event:
            case FrontFailed():
                self._front_failed()
            case StackUp(attempt, dockerd) if attempt is self._bring_up:
                self._brought_up(dockerd)
            case StackFailed(attempt, error, retry) if attempt is self._bring_up:
                self._bring_up_failed(error, retry)
            case Judged(attempt) if attempt is self._judging:
                self._judging = None
                if self.phase is Phase.CARD_WAIT and not self._timer_set(Timer.CARD):
                    self._set_timer(Timer.CARD, 0.0)  # the card's wait was over: its start waited for this
                elif self.phase in (Phase.WAITING, Phase.STARTING, Phase.RUNNING):
                    self._set_timer(Timer.START, 0.0)  # the start that waited for the verdict
            case _:
                pass  # a report of a bring-up or a judging given up on

    def _shutdown(self) -> None:
        self._cancel_timers()
        if self.phase in STOPPING:
            self._transition(Phase.ENDING, "the application stops")  # the stop under way goes on, to the end
            self._steps = [*self._steps, *(p for p in self._stack_steps() if p not in self._steps)]
        else:
            self._stop([*self._dockerd_steps(with_containers=True), *self._stack_steps()], Phase.ENDING)

    def _cancel_timers(self) -> None:
        for timer in Timer:
            self._set_timer(timer, None)

    def _answering(self, process: Process) -> None:
        process.remember_descendants()  # docker-proxy and the like have started by now
        if self._front is not None and (self._front.failed or self._front_down) and not self._timer_set(Timer.FRONT):
            # It failed while no supervisor heard it (the application stopped), or its revival was
            # called off by a stop (the timers go with it): it is due again now.
            self._front_failed()
        if self._front is not None and self._running_settings and not self._front_follows(self._running_settings):
            # As when dockerd cannot listen on its port: it reports an error, and the operator acts.
            self._stop(self._dockerd_steps(), Phase.STOPPING_TO_IDLE, Status.DOCKERD_RUNTIME_ERROR)
            return
        if self._starting is not None:
            cause, since = self._starting
            self._starting = None
            self._counts.restarted(cause, self._now() - since)
        self._transition(Phase.RUNNING, f"dockerd answers (pid {process.program_pid})")

    def _restart(self, reason: str, seq: int, at_once: bool, posted: float, cause: Cause | None) -> None:
        if seq <= self._applied:
            logger.debug("Restart request already covered by the running settings: %s", reason)
            return
        logger.info("dockerd restart requested: %s", reason)
        if cause is not None and self._pending is None:
            self._pending = (cause, posted)  # the first change of a burst: the restart is counted from it
        self._crashes = 0  # an operator's change deserves a prompt start
        if not at_once:
            self._last_change = max(self._last_change, posted)
        if self.phase not in (*STOPPING, Phase.CARD_WAIT, Phase.STOPPED):
            self._set_timer(Timer.START, 0.0 if at_once else self._coalesce, keep_earlier=True)
            if self.phase in (Phase.NEW, Phase.IDLE):
                self._transition(Phase.WAITING, "restart scheduled")
        # While stopping, the start that follows reads the settings anew.

    def _reload(self, reason: str) -> None:
        if self.phase is Phase.RUNNING and self._dockerd is not None:
            self.stack.refresh_config()
            logger.info("dockerd reloads its configuration (SIGHUP): %s", reason)
            self._live_restore = live_restore_on(self.host.daemon_json)
            self._dockerd.signal(signal.SIGHUP)
            self._counts.reloaded(Cause.SETTING)
        else:
            self._post_restart(reason, at_once=False, cause=Cause.SETTING)  # not running now: the next start reads it

    def _timer(self, timer: Timer) -> None:
        if timer is Timer.START and self._bring_up is not None:
            self._start_due = True  # after the bring-up has reported
        elif timer is Timer.START:
            self._start()
        elif timer is Timer.KILL and self._stopping is not None:
            logger.warning("%r still running %.1f s after SIGTERM; sending SIGKILL", self._stopping, self._stop_grace)
            self._stopping.kill()
        elif timer is Timer.CARD and self.phase is Phase.CARD_WAIT:
            self._start()  # no card after the wait: the check says 5
        elif timer is Timer.FRONT:
            self._revive_front()

    # --- exits -----------------------------------------------------------------------------------

    def _exited(self, process: Process, exit: Exit) -> None:
        if process is self._stopping:
            logger.info("%s stopped (%s)", process.name, exit)
            self._stopping = None
            self._set_timer(Timer.KILL, None)
            self._forget(process)
            self._next_step()
        elif process is self._dockerd:
            self._dockerd_exited(exit)
        elif process in self.stack.processes:
            self._stack_exited(process, exit)

    def _forget(self, process: Process) -> None:
        if process is self._dockerd:
            self._dockerd_gone()
        elif process in self.stack.processes:
            self.stack.lost(process)

    def _dockerd_gone(self) -> bool:
        """dockerd has exited: its containers' output flows again, its mounts go. Whether it was held."""
        self._dockerd = None
        if self._front is not None:
            self._front.use(None)  # nobody to pass the API's bytes to
        holding = self._release_output()
        housekeeping.release_mounts(self.host, self.stack.data_root)
        return holding

    def _dockerd_exited(self, exit: Exit) -> None:
        holding = self._dockerd_gone()
        if self.phase in STOPPING:
            if holding and self._stopping is None:
                self._next_step()  # it went while its output was held: the hold's news is no longer awaited
            return  # a step that was not dockerd: the plan goes on
        if exit.failed and self._timer_set(Timer.START):
            # A change came while it started (a file uploaded, say): the start it asked for may fix it.
            logger.error("dockerd exited with %s; starting it again with the change made since", exit)
            self._counts.crashed()
            self._transition(Phase.WAITING, "dockerd failed; a change is due")
        elif exit.failed:
            logger.error(
                "dockerd exited with %s; not restarting it until a setting changes or a TLS file is uploaded", exit
            )
            self._counts.crashed()
            self._idle(Status.DOCKERD_RUNTIME_ERROR, "dockerd failed")
        else:
            self._crashed(f"dockerd stopped ({exit})")

    def _stack_exited(self, process: Process, exit: Exit) -> None:
        self.stack.lost(process)
        if self.phase in STOPPING:
            return  # it was going to be stopped anyway
        if process.name == "containerd" and self.stack.holder_alive() and self.stack.containerd_keeps_containers():
            # The shims keep the containers; a new containerd on the same paths finds them again.
            # dockerd would reconnect by itself, after a backoff of its own: a restart is quicker.
            # (Should the holder be on its way out, a kill of the holder heard first as containerd's
            # death, the new one cannot come up: the bring-up fails, and everything starts again.)
            logger.warning("containerd stopped (%s); starting it again, then dockerd", exit)
            self._counts.crashed()
            self._pending = self._pending or (Cause.CRASH, self._now())
            self._stack_broken = True
            if self._dockerd is not None:
                self._set_timer(Timer.START, 0.0)  # the start's bring-up starts the missing containerd
            return
        elif process.name == "containerd" and self.stack.holder_alive():
            # A new containerd would drop the running containers while they run on, unseen: stop them all.
            logger.error("containerd stopped (%s); started again, it would not find the running containers: "
                         "restarting everything, the containers are killed with it", exit)  # fmt: skip
        elif process.name == "containerd":
            # It died with the namespaces: the holder's own exit is on its way; go on without it.
            logger.error("The namespace holder stopped: containers and dockerd went with it")
        else:
            logger.error("The namespace holder stopped (%s): containers and dockerd went with it", exit)
        if process.name == "containerd":
            for holder in self.stack.processes:
                holder.kill()
                self.stack.lost(holder)
        self._full = True
        if self._dockerd is not None:
            self._dockerd.kill()  # it is in the dead namespaces; its exit follows
            self._dockerd = None
        if self.phase in (Phase.STARTING, Phase.RUNNING):
            self._crashed(f"{process.name} stopped")

    def _crashed(self, what: str) -> None:
        """Something stopped unasked: a crash, and a start again after the backoff."""
        self._counts.crashed()
        self._pending = self._pending or (Cause.CRASH, self._now())
        if self._now() - self._started_at >= self._backoff.stable_after:
            self._crashes = 0
        self._crashes += 1
        delay = self._backoff.delay(self._crashes)
        logger.warning("%s; restarting in %.1f s", what, delay)
        self._set_timer(Timer.START, delay)
        self._transition(Phase.WAITING, what)

    # --- starting --------------------------------------------------------------------------------

    def _start(self) -> None:
        """A start is due: stop what must go, check, then start what is missing, dockerd last."""
        with self._seq_lock:  # before the settings are read: a change saved meanwhile is not counted in
            seq = self._seq
        settings = self._read_settings()
        try:
            self._go_on_starting(seq, settings)
        except NotJudged:
            self._judge()

    def _go_on_starting(self, seq: int, settings: Settings) -> None:
        if self._front_reloads(seq, settings):
            if self._pending is not None:
                self._counts.reloaded(self._pending[0])
                self._pending = None
            return
        if self._keeps_serving(settings):
            self._pending = None  # nothing restarts
            return
        data_root = self._data_root(settings)
        if self.stack.data_root not in (None, data_root):
            self._full = True  # a new data-root: the containers of the old one stop
        steps = [*self._dockerd_steps(with_containers=self._full), *(self.stack.processes if self._full else [])]
        if steps:
            self._stop(steps, Phase.STOPPING_TO_START)
            return
        if self._now() < self._last_change + self._quiet:
            # Changes still coming: all in one start.
            self._set_timer(Timer.START, self._last_change + self._quiet - self._now())
            return
        self._full = False
        self._applied = seq
        self._uses_card = settings.sd_card
        blocked = check(settings, self._tls, judge=False)
        if blocked is None and settings.sd_card:
            if self._card is None:
                logger.warning("SDCardSupport is on, but this host has no SD card configured")
                blocked = Status.NO_SD_CARD
            elif not self._card.present and self.phase is not Phase.CARD_WAIT:
                self._set_timer(Timer.CARD, WAIT_FOR_CARD)
                logger.info("Waiting up to %.0f s for the SD card at %s", WAIT_FOR_CARD, self._card.place.mount_point)
                self._transition(Phase.CARD_WAIT, "waiting for the SD card")
                return
            else:
                blocked = sdcard.check(self._card.place, mounts.read())
        self._set_timer(Timer.CARD, None)
        if blocked is not None:
            self._idle(blocked, f"not starting dockerd: {blocked}")
            return
        self._spawn(settings, data_root)

    def _judge(self) -> None:
        """The start needs the TLS files' verdict, not made yet (a child judges them, up to 30 s):
        made in the background, then the start is due again."""
        if self._judging is not None:
            return
        self._judging = attempt = object()

        def judge() -> None:
            try:
                self._tls.refusal()
            finally:
                self.post(Judged(attempt))  # if it failed, the start tries again and says why

        self._in_background("judge-tls", judge)

    def _spawn(self, settings: Settings, data_root: Path) -> None:
        # This dockerd answers for the changes made until now (one that replaces a dockerd that never
        # answered answers for that one's too); a change made from now on restarts it again.
        self._starting, self._pending = self._starting or self._pending, None
        self._stack_broken = False  # the bring-up starts what is missing of the stack
        bring_up = BringUp(self.host, self.stack, self._runner, self._post_exit, settings, data_root)
        self._transition(Phase.BRINGING_UP, "bringing up the stack and dockerd")
        self._bring_up = bring_up  # after the transition: a bring-up is never left without its worker
        self._in_background("bring-up", lambda: self.post(bring_up.run()))

    def _brought_up(self, process: Process) -> None:
        settings = self._bring_up.settings if self._bring_up is not None else None
        self._bring_up = None
        self._dockerd = process
        self._live_restore = live_restore_on(self.host.daemon_json)
        if self.phase in STOPPING:
            self._stop_what_came_up()
            return
        self._started_at, self._running_settings = self._now(), settings
        self._transition(Phase.STARTING, f"dockerd started (pid {process.program_pid})")
        self._watch_ready(process, lambda: self.post(Answering(process)))
        self._after_bring_up()

    def _bring_up_failed(self, error: OSError, retry: bool) -> None:
        self._bring_up = None
        self._full = True
        if self.phase in STOPPING:
            self._stop_what_came_up()
        elif retry:
            logger.error("Cannot start dockerd's stack: %s", error)
            self._stop(list(self.stack.processes), Phase.STOPPING_TO_RETRY)
            self._after_bring_up()
        else:
            logger.error("Cannot start dockerd: %s", error)
            self._stop(list(self.stack.processes), Phase.STOPPING_TO_IDLE, Status.DOCKERD_RUNTIME_ERROR)
            self._after_bring_up()

    def _stop_what_came_up(self) -> None:
        """A stop came during the bring-up: what it started stops now, and the stop goes on."""
        self._steps = [*self._dockerd_steps(with_containers=True), *self.stack.processes, *self._steps]
        self._after_bring_up()
        self._next_step()

    def _after_bring_up(self) -> None:
        """What waited for the bring-up's report: the exits heard meanwhile, a start come due."""
        deferred, self._deferred = self._deferred, []
        for event in deferred:
            self._handle(event)
        if self._start_due and self.phase not in (*STOPPING, Phase.STOPPED):
            self._set_timer(Timer.START, 0.0, keep_earlier=True)
        self._start_due = False  # a stop's end starts again by itself when a change came meanwhile

    def _data_root(self, settings: Settings) -> Path:
        if settings.sd_card and self._card is not None:
            return self._card.place.data_root
        return self.host.localdata / "data"

    def _front_reloads(self, seq: int, settings: Settings) -> bool:
        """With the API's front, a change of UseTLS, TCPSocket or the TLS files is the front's: it
        takes it in place (new connections get it, open ones go on) and dockerd keeps running.
        Whether it did; if not, the change goes the way it goes with dockerd's own TLS."""
        running = self._running_settings
        if self._front is None or self.phase is not Phase.RUNNING or running is None:
            return False
        if self._full or self._stack_broken:  # the stack is brought up anew, or what is missing of it
            return False
        if settings.dockerd_part != running.dockerd_part:
            return False
        blocked = check(settings, self._tls, judge=False)
        if blocked is not None or not self._front_follows(settings):
            return False  # a refused set is kept out (``_keeps_serving``); a missing file stops dockerd (3)
        self._running_settings, self._applied = settings, seq
        assert self._dockerd is not None
        logger.info("The Docker API's front took the change; dockerd keeps running (pid %d)", self._dockerd.program_pid)
        return True

    def _front_follows(self, settings: Settings) -> bool:
        """The front listens as ``settings`` say, with the stored files; whether it could."""
        assert self._front is not None
        try:
            context = None
            if settings.use_tls:
                files = {name: data for name, data in self._tls.read().items() if data is not None}
                context = server_context(files, versions.of("dockerd", self.host.path))  # asked at the bring-up
            self._front.use(Listen(self.host.address, settings.port, context) if settings.tcp_socket else None)
        except (OSError, ValueError, KeyError) as err:  # ssl.SSLError is an OSError
            what = f"{self.host.address}:{settings.port}"
            reason = err.reason if isinstance(err, ssl.SSLError) and err.reason else err
            logger.error("The Docker API's front cannot serve %s: %s", what, reason)
            return False
        return True

    def _front_failed(self) -> None:
        if self._front is None or self.phase is Phase.STOPPED:
            return
        if self._now() - self._front_started >= FRONT_HELD:
            self._front_failures = 0
        delay = min(FRONT_RETRY_MAX, FRONT_RETRY * 2**self._front_failures)
        self._front_failures += 1
        reachable = self._front.reachable
        logger.error("The Docker API's front failed: %s until it is started again in %.0f s; dockerd and the "
                     "containers run on", "new clients are served, fewer at once" if reachable
                     else "clients cannot reach dockerd", delay)  # fmt: skip
        self._front_down = not reachable
        self._publish_status()
        self._set_timer(Timer.FRONT, delay, keep_earlier=True)

    def _revive_front(self) -> None:
        """Started again as it was (what it listened on, the certificates it served: the store
        may hold half of a rotation that dockerd's restart would not take either)."""
        assert self._front is not None
        try:
            self._front.revive()
        except OSError as err:
            logger.error("The Docker API's front cannot be started again: %s", printable(str(err)))
            self._front_down = self._front.failed
            if self.phase is Phase.RUNNING:  # as when it cannot listen at a start: the operator must see it
                self._stop(self._dockerd_steps(), Phase.STOPPING_TO_IDLE, Status.DOCKERD_RUNTIME_ERROR)
            return
        self._front_down = False
        self._front_started = self._now()
        logger.info("The Docker API's front started again")
        self._publish_status()

    def _keeps_serving(self, settings: Settings) -> bool:
        """Whether a serving dockerd stays as it is: when only TLS files changed (same settings)
        and dockerd would refuse them. One-file-at-a-time rotation passes through such sets;
        a serving dockerd is not traded for one that cannot start."""
        running = self._running_settings
        if self._dockerd is None or running is None or self._full or self._stack_broken or settings != running:
            return False
        refused = check(running, self._tls, judge=False) is Status.TLS_CERT_INVALID
        if refused:
            with self._seq_lock:
                self._applied = self._seq
            logger.warning("Not restarting dockerd; it keeps serving with the TLS files it started with")
        return refused

    # --- stopping --------------------------------------------------------------------------------

    def _dockerd_steps(self, with_containers: bool = False) -> list[Step]:
        if self._dockerd is None:
            return []
        if not self._live_restore:
            return [self._dockerd]  # it stops the containers itself, their output logged to the end
        # With live-restore dockerd leaves containers running when it stops; at the ends that
        # must stop them, they are stopped first, as docker stop does, each with its own timeout.
        if with_containers and self.phase is Phase.RUNNING:
            return [CONTAINERS, self._dockerd]
        # They run on: their output waits at the shims until dockerd has logged all it took.
        return [OUTPUT, self._dockerd]

    def _stack_steps(self) -> list[Process]:
        """The stack's processes, when the supervisor may read the stack (no bring-up runs)."""
        return [] if self._bring_up is not None else self.stack.processes

    def _stop(self, steps: list[Step], then: Phase, reason: Status | None = None) -> None:
        """Stop ``steps`` one at a time, in the stopping phase ``then`` that says what follows
        (``reason``: the Status an idle supervisor will wait with)."""
        if self._bring_up is not None:
            # Everything it starts stops (a stop during a bring-up is the application's, or the
            # card's): once it has said what that is.
            self._bring_up.cancel()
            self._full = True
            steps = [BRING_UP]
        self._steps, self._reason = list(steps), reason
        self._set_timer(Timer.START, None)
        self._start_due = False
        self._transition(then, f"stopping {', '.join(map(str, steps)) or 'nothing'}")
        self._next_step()

    def _next_step(self) -> None:
        while self._steps:
            step = self._steps.pop(0)
            if step == BRING_UP:
                if self._bring_up is None:
                    continue
                self._steps.insert(0, step)  # its report goes on from here (``_stop_what_came_up``)
                return
            if step == CONTAINERS:
                self._in_background("stop-containers", self._stop_all_containers)
                return
            if step == OUTPUT:
                if self._dockerd is None:
                    continue
                self._hold = self._hold_output()
                self._in_background("hold-output", partial(self._hold_and_tell, self._hold))
                return
            if isinstance(step, Process) and step.alive:
                logger.info("Stopping %r", step)
                self._stopping = step
                step.terminate()
                self._set_timer(Timer.KILL, self._stop_grace)
                return
            if isinstance(step, Process):
                self._forget(step)
        self._stopped()

    def _stop_all_containers(self) -> None:
        self.post(ContainersStopped(self._stop_containers(self._stop_grace - 2)))

    def _hold_and_tell(self, hold: output.Hold) -> None:
        self.post(OutputHeld(hold, hold.hold()))

    def _release_output(self) -> bool:
        """dockerd is gone: the containers' output flows again, into the FIFOs the next one reads.
        Whether it was held."""
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.release()
        return hold is not None

    def _stopped(self) -> None:
        self._release_output()
        if self.phase is Phase.ENDING:
            self._transition(Phase.STOPPED, "application stopping")
        elif self.phase is Phase.STOPPING_TO_RETRY:
            self._crashed("the stack did not come up")
        elif self.phase is Phase.STOPPING_TO_IDLE and self._seq <= self._applied and not self._card_back():
            self._idle(self._reason or Status.NO_SD_CARD, "stopped")
        else:
            if self.phase is Phase.STOPPING_TO_IDLE and self._seq <= self._applied:
                self._pending = self._pending or (Cause.CARD, self._now())  # the card is back already
            self._set_timer(Timer.START, 0.0)
            self._transition(Phase.WAITING, "stopped for a restart")

    def _idle(self, reason: Status, why: str) -> None:
        self._reason = reason
        # What waits for the operator starts again when they act: their change is its cause.
        self._pending = self._starting = None
        self._transition(Phase.IDLE, why)

    def _card_back(self) -> bool:
        """Whether the card that went (and stopped everything) is there again already."""
        return self._reason is Status.NO_SD_CARD and self._card is not None and self._card.present

    def _card_changed(self, present: bool) -> None:
        if self.phase is Phase.CARD_WAIT and present:
            self._set_timer(Timer.CARD, 0.0)
        elif not self._uses_card or self.phase in (*STOPPING, Phase.STOPPED, Phase.CARD_WAIT):
            return
        elif present and self.phase is Phase.IDLE:
            logger.info("SD card back; starting dockerd")
            self._pending = (Cause.CARD, self._now())
            self._set_timer(Timer.START, 0.0)
            self._transition(Phase.WAITING, "SD card back")
        elif not present:
            # Gone: the containers stop as docker stop does (dockerd keeps them in memory, and their
            # processes run on), then dockerd, before its storage is missed, and containerd, whose root
            # is there too.
            logger.info("SD card gone; stopping dockerd")
            self._full = True
            steps = [*self._dockerd_steps(with_containers=True), *self._stack_steps()]
            self._stop(steps, Phase.STOPPING_TO_IDLE, Status.NO_SD_CARD)

    def _transition(self, to: Phase, why: str) -> None:
        check_transition(self.phase, to)
        logger.debug("Supervisor %s -> %s: %s", self.phase.value, to.value, why)
        self.phase = to
        if to is Phase.STOPPED:
            self._workers.shutdown(wait=False)  # nothing they started runs any more
        self._publish_status()

    def _publish_status(self) -> None:
        """The phase's Status; but dockerd running is not 0 RUNNING while the API's front, the
        clients' only way to it, is down: 1, as for a dockerd that stopped."""
        status = status_of(self.phase, self._reason)
        if status is Status.RUNNING and self._front_down:
            status = Status.DOCKERD_STOPPED
        if status is not self._status:
            self._status = status
            self._set_status(status)

    def _in_a_worker(self, name: str, work: Callable[[], None]) -> None:
        def logged() -> None:
            try:
                work()
            except Exception:
                logger.exception("The supervisor's %s failed", name)

        self._workers.submit(logged)
