"""The application, whatever serves it: the parameter store, the TLS store, daemon.json, and the
WSGI app over them, put together once; and its runs, each a dockerd supervisor with the SD card
watcher, started and stopped as a camera starts and stops an application (``control.cgi``)
while the HTTP side stays up.

``servers.run`` serves it over FastCGI (the camera), ``servers.serve`` with gunicorn
over HTTPS (a host service); both start it, and stop it when they stop. Whether it was
stopped by request is kept (``application.json``): a camera keeps a stopped application
stopped across a reboot.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

from acap_http import config, device, hostgroups, logs
from acap_http import manifest as manifest_module
from acap_http.apifront.proxy import Front
from acap_http.app import AcapApp, Endpoints
from acap_http.filestore import FileStore
from acap_http.handlers.applications import Applications
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.discovery import Discovery
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.page import PageEndpoints
from acap_http.handlers.param_api import ParamApi
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import Manifest
from acap_http.metrics import Listener, Metrics, Readings
from acap_http.options import TLS_BY_FRONT, Options
from acap_http.overview import Event, Kept, Overview, Sources, dockerd_facts, dockerd_runs
from acap_http.params import ParamStore
from acap_http.status import Status
from acap_http.supervisor import cgroups, dockerd_check
from acap_http.supervisor.command import Host, runtime_dir_of
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.supervisor.events import Cause
from acap_http.supervisor.phases import Phase
from acap_http.supervisor.sdcard import CardPlace, CardWatcher
from acap_http.supervisor.settings import STATUS, Settings, restart_on_changes
from acap_http.tls.store import TlsStore

logger = logging.getLogger(__name__)

STATE_FILE = "application.json"  # {"running": false} once stopped by request
DOCKERD_FACTS_KEPT = 3.0  # seconds the settings page's facts of dockerd are shown again before it is asked anew


class Run:
    """One run of the application: the dockerd supervisor and the SD card watcher, together."""

    def __init__(self, application: Application, options: Options) -> None:
        area = options.card_area(application.manifest.app_name)
        self.card = CardWatcher(CardPlace(options.sd_card_mount, area))
        self.supervisor = Supervisor(
            read_settings=application.settings,
            host=application.host,
            tls=application.tls_store,
            front=application.api_front,
            set_status=application.set_status,
            stop_grace=options.stop_grace,
            card=self.card,
            counts=application.metrics,
        )

    def start(self) -> None:
        self.card.start(self.supervisor.card_changed)
        self.supervisor.start()

    def stop(self) -> None:
        """Containers, dockerd and everything under it first; returns when all are gone."""
        self.supervisor.shutdown()
        self.card.stop()


class Application:
    """Everything that answers requests, and its run of dockerd, ready to ``start`` and ``stop``."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.app_dir = options.app_dir.resolve()
        self.manifest: Manifest = manifest_module.load(options.manifest_file())
        paths = config.AppPaths(self.app_dir)
        paths.localdata.mkdir(parents=True, exist_ok=True)
        self.localdata = paths.localdata
        self.tls_store = tls_store = TlsStore(paths.localdata)  # the one: uploads, summaries, the supervisor's check
        tls_store.recover()  # a set upload a crash interrupted is completed or discarded before anyone reads it
        self.params = ParamStore.from_manifest(self.manifest, self.app_dir)
        logs.follow_level(self.params)
        uid = os.geteuid()
        self.host = Host(
            rootless=uid != 0,
            app_dir=self.app_dir,
            runtime_dir=runtime_dir_of(uid),
            address=options.docker_address,
            path=os.environ.get("PATH", ""),
            uid=uid,
            gid=os.getegid(),
            api_front=options.tls_by == TLS_BY_FRONT,
        )
        # With --tls-by front the application ends TLS on the API's port: rotations are reloads.
        self.api_front = (
            Front(self.host.control_socket, on_failure=self._front_failed, clients=frozenset(options.api_clients))
            if self.host.api_front
            else None
        )
        self._state = FileStore(self.app_dir)
        self._control = threading.Lock()  # one start or stop at a time
        self._run: Run | None = None
        self._closed = False  # the serving mode has stopped: no run starts any more
        self._status_observers: list[Callable[[Status], None]] = []
        self._status_since = time.time()  # when Status took its value
        self._last_restart: Event | None = None
        self.log_tail = logs.Tail()  # the page's last lines of the log, from the start on
        # dockerd's facts, asked anew every few seconds, and at once when Status changes.
        dockerd = Kept(self.dockerd_state, DOCKERD_FACTS_KEPT, lambda: self.params.get(STATUS))
        self.overview = Overview(
            Sources(self.manifest, self.params, tls_store, lambda: self.running, lambda: self._status_since,
                    lambda: self._last_restart, dockerd, self.log_tail.lines)
        )  # fmt: skip
        self.metrics = Metrics(
            Readings(lambda: self.params.get(STATUS), lambda: self.running, self.overview.tls_summary, dockerd),
            self.manifest.app_name, self.manifest.version,
        )  # fmt: skip
        self._metrics_listener: Listener | None = None
        restart_on_changes(self.params, self.request_restart)
        identity = device.Identity.of_host()
        tree = ParamTree(self.params, self.manifest.app_name, device.parameter_groups(identity))
        daemon_json = DaemonJson(paths.localdata, lambda data: dockerd_check.refusal(data, self.settings(), self.host))
        self.wsgi = AcapApp(
            self.manifest,
            Endpoints(
                tls_files=TlsEndpoints(
                    tls_store,
                    lambda why: self.request_restart(why, Cause.UPLOAD),
                    tls_in_use=lambda: self.settings().tls_on_tcp,
                    reloads=self._front_serves,
                    record=self.metrics.uploaded,
                ),
                param_cgi=ParamCgi(tree, model=identity.model, record=self.metrics.param_updated),
                daemon_json=DaemonJsonEndpoints(daemon_json, self.request_restart, self.reload_config),
                info=InfoEndpoint(self.info),
                applications=Applications(self.manifest, self),
                param_api=ParamApi(tree, self.metrics.param_updated),
                discovery=Discovery(identity),
                page=PageEndpoints(self.manifest, self.overview),
                metrics=self.metrics.view,
            ),
            running=lambda: self.running,
        )

    # --- what the endpoints ask of the run -----------------------------------------------------

    @property
    def running(self) -> bool:
        return self._run is not None

    def request_restart(self, reason: str, cause: Cause = Cause.SETTING) -> None:
        """Restart dockerd with the settings and files as they are now; a stopped application reads
        them when it starts. ``cause``: what the restart is counted as."""
        self._last_restart = Event(reason, time.time())
        run = self._run
        if run is not None:
            run.supervisor.request_restart(reason, cause)
        else:
            logger.info("%s; the application is stopped: it takes it when it starts", reason)

    def reload_config(self, reason: str) -> bool:
        run = self._run
        return run.supervisor.reload_config(reason) if run is not None else False

    def info(self) -> dict[str, object]:
        """What ``GET …/info`` answers: the application, how dockerd runs, the groups its containers see."""
        runs = dockerd_runs(self.host)
        try:
            subgid = hostgroups.SUBGID.read_text()
        except OSError:
            subgid = ""
        mapped = hostgroups.mapping(subgid, runs["user"], self.host.uid) if self.host.rootless else []
        return {
            "application": {"name": self.manifest.app_name, "version": self.manifest.version,
                            "friendly_name": self.manifest.friendly_name,
                            "state": "Running" if self.running else "Stopped"},
            "dockerd": runs,
            "groups": [{"name": entry.name, "host_gid": entry.host_gid, "container_gid": entry.container_gid}
                       for entry in mapped],
        }  # fmt: skip

    def dockerd_state(self) -> dict[str, object]:
        """dockerd as the page shows it: how it runs, and, while it answers, its own account."""
        run = self._run
        return dockerd_facts(self.host, run.supervisor.dockerd_argv() if run is not None else None)

    def settings(self) -> Settings:
        return Settings.read(self.params.get, self.params.is_on)

    def set_status(self, status: Status) -> None:
        if self.params.get(STATUS) != status.value:
            self._status_since = time.time()
        self.params.update({STATUS: status.value}, by_program=True)
        for observer in self._status_observers:
            observer(status)

    def on_status(self, observer: Callable[[Status], None]) -> None:
        """Tell ``observer`` every Status the supervisor sets (systemd's STATUS=, readiness)."""
        self._status_observers.append(observer)

    def _front_failed(self) -> None:
        """The API's front failed (from its own thread): the running supervisor hears it."""
        run = self._run
        if run is not None:
            run.supervisor.front_failed()

    def _front_serves(self) -> bool:
        """Whether a new TLS file is a reload: the API's front serves, with dockerd running."""
        run = self._run
        return self.api_front is not None and run is not None and run.supervisor.phase is Phase.RUNNING

    # --- the serving mode's start and stop ---------------------------------------------------------

    def start(self) -> None:
        """The serving mode starts: dockerd too, unless the application was stopped by request."""
        logging.getLogger().addHandler(self.log_tail)
        self.metrics.started()
        self._listen_for_metrics()
        mode = "rootless, in rootlesskit's namespaces" if self.host.rootless else "rootful, as root"
        logger.info("%s %s started; files in %s; dockerd runs %s", self.manifest.app_name, self.manifest.version,
                    self.localdata, mode)  # fmt: skip
        if self.host.rootless:
            logger.warning("%s", cgroups.describe(cgroups.why_rootless_has_none()))
        if self.api_front is not None:
            self.api_front.start()
        if self._stopped_by_request():
            logger.info("The application was stopped by request and stays stopped (control.cgi?action=start)")
            return  # Status stays what it is before any run: the manifest's -1
        self.start_run()

    def stop(self) -> None:
        """The serving mode stops: dockerd and everything under it first; Status ends at -1."""
        with self._control:
            self._closed = True  # a control.cgi start still in flight starts nothing now
            run, self._run = self._run, None
            if run is not None:
                run.stop()  # its supervisor's last Status is -1
            if self.api_front is not None:
                self.api_front.stop()
            if self._metrics_listener is not None:
                self._metrics_listener.stop()
        logging.getLogger().removeHandler(self.log_tail)

    def _listen_for_metrics(self) -> None:
        """``--metrics-listen``: a listener that cannot be made is said, and the application serves on."""
        if self.options.metrics_listen is None:
            return
        host, port = self.options.metrics_listen
        try:
            self._metrics_listener = Listener(self.metrics, host, port)
        except OSError as err:
            logger.error("Cannot serve the metrics on %s port %d: %s", host, port, err.strerror or err)
            return
        self._metrics_listener.start()

    # --- control.cgi: the application's own start and stop, kept across restarts -------------------------

    def start_run(self) -> bool:
        """Start dockerd and its stack; False if they run already."""
        with self._control:
            return self._start_run()

    def stop_run(self) -> bool:
        """Stop the containers, dockerd and everything under it, as stopping a camera's application
        does; the HTTP side stays. False if it was not running."""
        with self._control:
            return self._stop_run()

    def restart_run(self) -> None:
        """Stop, if running, and start, as one step: no other start or stop comes between."""
        with self._control:
            self._stop_run()
            self._start_run()

    def _start_run(self) -> bool:
        if self._closed:
            raise RuntimeError("the server is stopping")
        if self._run is not None:
            return False
        self._run = Run(self, self.options)
        self._run.start()
        self._keep_state(running=True)
        return True

    def _stop_run(self) -> bool:
        run, self._run = self._run, None
        if run is None:
            return False
        logger.info("Stopping the application by request")
        run.stop()  # its supervisor's last Status is -1
        self._keep_state(running=False)
        return True

    def _stopped_by_request(self) -> bool:
        data = self._state.read_if_present(STATE_FILE)
        try:
            return data is not None and json.loads(data).get("running") is False
        except (ValueError, AttributeError):
            return False

    def _keep_state(self, *, running: bool) -> None:
        try:
            self._state.write(STATE_FILE, (json.dumps({"running": running}) + "\n").encode(), 0o644)
        except OSError as err:
            logger.error("Could not keep the application's state in %s: %s", self.app_dir / STATE_FILE, err)
