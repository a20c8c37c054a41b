"""The application, whatever serves it: the parameter store, the TLS store, the dockerd
supervisor, the SD card watcher, and the WSGI app over them, put together once.

``servers.run`` serves it over FastCGI (the camera), ``servers.serve`` with gunicorn
over HTTPS (a host service); both start it, and stop it when they stop.
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acap_http import config, hostgroups, logs
from acap_http import manifest as manifest_module
from acap_http.app import AcapApp
from acap_http.handlers.daemon_json import DaemonJsonEndpoints
from acap_http.handlers.info import InfoEndpoint
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import Manifest
from acap_http.params import ParamStore
from acap_http.status import Status
from acap_http.supervisor import cgroups, dockerd_check, versions
from acap_http.supervisor.command import Host, runtime_dir_of
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.daemon_json import DaemonJson
from acap_http.supervisor.sdcard import CardPlace, CardWatcher
from acap_http.supervisor.settings import STATUS, Settings, restart_on_changes
from acap_http.tlsstore import TlsStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """What an operator may choose about the application, whatever serves it."""

    app_dir: Path
    manifest_path: Path | None = None  # None: the checkout's, else APP_DIR/manifest.json
    docker_address: str = "0.0.0.0"
    stop_grace: float = config.STOP_GRACE
    sd_card_mount: Path = config.CAMERA_SD_MOUNT
    sd_card_area: Path = config.CAMERA_SD_AREA


class Application:
    """Everything that answers requests and runs dockerd, ready to ``start`` and ``stop``."""

    def __init__(self, options: Options) -> None:
        self.app_dir = options.app_dir.resolve()
        self.manifest: Manifest = manifest_module.load(options.manifest_path or config.find_manifest(self.app_dir))
        paths = config.AppPaths(self.app_dir)
        paths.localdata.mkdir(parents=True, exist_ok=True)
        self.localdata = paths.localdata
        tls_store = TlsStore(paths.localdata)
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
        )
        self.card = CardWatcher(CardPlace(options.sd_card_mount, options.sd_card_area))
        self.supervisor = Supervisor(
            read_settings=self.settings,
            host=self.host,
            set_status=self.set_status,
            stop_grace=options.stop_grace,
            card=self.card,
        )
        restart_on_changes(self.params, self.supervisor.request_restart)
        daemon_json = DaemonJson(paths.localdata, lambda data: dockerd_check.refusal(data, self.settings(), self.host))
        self.wsgi = AcapApp(
            self.manifest,
            TlsEndpoints(tls_store, self.supervisor.request_restart, tls_in_use=lambda: self.settings().tls_on_tcp),
            ParamCgi(self.params, self.manifest.app_name),
            DaemonJsonEndpoints(daemon_json, self.supervisor.request_restart, self.supervisor.reload_config),
            InfoEndpoint(self.info),
        )
        self._status_observers: list[Callable[[Status], None]] = []

    def info(self) -> dict[str, object]:
        """What ``GET …/info`` answers: the application, how dockerd runs, the groups its containers see."""
        user = pwd.getpwuid(self.host.uid).pw_name
        try:
            subgid = hostgroups.SUBGID.read_text()
        except OSError:
            subgid = ""
        mapped = hostgroups.mapping(subgid, user, self.host.uid) if self.host.rootless else []
        return {
            "application": {"name": self.manifest.app_name, "version": self.manifest.version,
                            "friendly_name": self.manifest.friendly_name},
            "dockerd": {"mode": "rootless" if self.host.rootless else "rootful", "user": user,
                        "version": versions.show(versions.of("dockerd", self.host.path))},
            "groups": [{"name": entry.name, "host_gid": entry.host_gid, "container_gid": entry.container_gid}
                       for entry in mapped],
        }  # fmt: skip

    def settings(self) -> Settings:
        return Settings.read(self.params.get, self.params.is_on)

    def set_status(self, status: Status) -> None:
        self.params.update({STATUS: status.value}, by_program=True)
        for observer in self._status_observers:
            observer(status)

    def on_status(self, observer: Callable[[Status], None]) -> None:
        """Tell ``observer`` every Status the supervisor sets (systemd's STATUS=, readiness)."""
        self._status_observers.append(observer)

    def start(self) -> None:
        mode = "rootless, in rootlesskit's namespaces" if self.host.rootless else "rootful, as root"
        logger.info(
            "%s %s started; files in %s; dockerd runs %s",
            self.manifest.app_name,
            self.manifest.version,
            self.localdata,
            mode,
        )
        if self.host.rootless:
            logger.warning("%s", cgroups.describe(cgroups.why_rootless_has_none()))
        self.card.start(self.supervisor.card_changed)
        self.supervisor.start()

    def stop(self) -> None:
        """dockerd and everything under it first; Status ends at -1 NOT STARTED."""
        self.supervisor.shutdown()
        self.card.stop()
        self.set_status(Status.NOT_STARTED)
