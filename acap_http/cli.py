"""The ``acap-http`` command: argument parsing, logging set-up, and the one
place where the application's parts are put together.

    acap-http run [--stdout]   the camera application (FastCGI on $FCGI_SOCKET_NAME)
    acap-http up               that application behind a local Apache front
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from acap_http import __version__, config, logs
from acap_http import manifest as manifest_module
from acap_http.app import AcapApp
from acap_http.errors import AcapHttpError
from acap_http.filestore import FileStore
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.tls_files import TlsFileHandler
from acap_http.params import ParamStore
from acap_http.servers.fastcgi import FastCgiServer
from acap_http.servers.local_front import UpOptions, up
from acap_http.status import Status
from acap_http.supervisor.command import Host, runtime_dir_of
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.runner import STOP_GRACE
from acap_http.supervisor.sdcard import CAMERA_AREA, CAMERA_MOUNT, CardPlace, CardWatcher
from acap_http.supervisor.settings import STATUS, Settings

logger = logging.getLogger(__name__)

SOCKET_ENV = "FCGI_SOCKET_NAME"
APPLICATION_LOG_LEVEL = "ApplicationLogLevel"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.command(args)
    except AcapHttpError as err:
        print(f"acap-http: {err}", file=sys.stderr)
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acap-http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"acap-http {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="serve the application on the FastCGI socket named by $FCGI_SOCKET_NAME (the camera entry point)",
    )
    run.add_argument("--stdout", action="store_true", help="log to standard output instead of syslog")
    run.add_argument(
        "--app-dir",
        type=Path,
        default=config.CAMERA_APP_DIR,
        help="application directory holding localdata/ (default: %(default)s, as on the camera)",
    )
    run.add_argument(
        "--manifest", type=Path, help="manifest.json (default: the checkout's, else APP_DIR/manifest.json)"
    )
    run.add_argument(
        "--docker-address",
        default="0.0.0.0",
        help="host address of dockerd's TCP socket (default: %(default)s, as on the camera)",
    )
    run.add_argument(
        "--stop-grace",
        type=float,
        default=STOP_GRACE,
        help="seconds dockerd gets to stop after SIGTERM before SIGKILL (default: %(default)s)",
    )
    run.add_argument(
        "--sd-card-mount",
        type=Path,
        default=CAMERA_MOUNT,
        help="where the SD card is mounted (default: %(default)s, as on the camera)",
    )
    run.add_argument(
        "--sd-card-area",
        type=Path,
        default=CAMERA_AREA,
        help="the application's directory on the card; dockerd's data go to AREA/data (default: %(default)s)",
    )
    run.set_defaults(command=run_command)

    up = commands.add_parser("up", help="run the application behind a local Apache front with digest authentication")
    up.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        type=_host_port,
        help="address and port of the front (default: %(default)s)",
    )
    up.add_argument(
        "--app-dir",
        type=Path,
        default=config.default_local_app_dir(),
        help="application directory, laid out as on the camera (default: %(default)s)",
    )
    up.add_argument(
        "--docker-address",
        default="127.0.0.1",
        help="host address where dockerd's TCP socket is published (default: %(default)s)",
    )
    up.add_argument(
        "--sd-card",
        type=Path,
        metavar="MOUNTPOINT",
        help="mount point of a removable disk to use as the SD card (SDCardSupport=yes puts dockerd's data there)",
    )
    up.add_argument(
        "--rootful",
        action="store_true",
        help="started as root, keep the app and dockerd as root (the legacy releases) instead of rootless",
    )
    up.add_argument("--manifest", type=Path, help="manifest.json (default: the checkout's)")
    up.set_defaults(command=up_command)
    return parser


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def run_command(args: argparse.Namespace) -> int:
    """The camera application: serve until SIGTERM or SIGINT, then stop cleanly."""
    logs.configure(to_stdout=args.stdout)
    socket_name = os.environ.get(SOCKET_ENV)
    if not socket_name:
        raise AcapHttpError(
            f"${SOCKET_ENV} is not set: 'acap-http run' is started by the web server "
            "with the FastCGI socket's path in it (or use 'acap-http up')"
        )
    app_dir = args.app_dir.resolve()
    manifest_path = args.manifest or config.find_manifest(app_dir)
    manifest = manifest_module.load(manifest_path)
    paths = config.AppPaths(app_dir)
    paths.localdata.mkdir(parents=True, exist_ok=True)
    params = ParamStore.from_manifest(manifest, paths.app_dir)
    _follow_log_level(params)
    uid = os.geteuid()
    host = Host(
        rootless=uid != 0,
        app_dir=app_dir,
        runtime_dir=runtime_dir_of(uid),
        address=args.docker_address,
        path=os.environ.get("PATH", ""),
    )

    def set_status(status: Status) -> None:
        params.update({STATUS: status.value}, by_program=True)

    card = CardWatcher(CardPlace(args.sd_card_mount, args.sd_card_area))
    supervisor = Supervisor(
        read_settings=lambda: Settings.read(params.get, params.is_on),
        host=host,
        set_status=set_status,
        stop_grace=args.stop_grace,
        card=card,
    )
    params.subscribe(lambda changed: _restart_on_settings(params, changed, supervisor.request_restart))
    app = AcapApp(
        manifest,
        TlsFileHandler(
            FileStore(paths.localdata),
            supervisor.request_restart,
            tls_in_use=lambda: Settings.read(params.get, params.is_on).tls_on_tcp,
        ),
        ParamCgi(params, manifest.app_name),
    )

    # The main thread owns the signals; handlers only post, the loop below acts.
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: events.put(signal.Signals(received).name))
    server = FastCgiServer(app, Path(socket_name), on_exit=lambda: events.put("FastCGI server ended"))
    server.start()
    mode = "rootless, under rootlesskit" if host.rootless else "rootful, as root"
    logger.info(
        "%s %s started; files in %s; dockerd runs %s", manifest.app_name, manifest.version, paths.localdata, mode
    )
    card.start(supervisor.card_changed)
    supervisor.start()
    reason = events.get()
    logger.info("Stopping (%s)", reason)
    supervisor.shutdown()
    card.stop()
    server.stop()
    set_status(Status.NOT_STARTED)
    return 0


def _follow_log_level(params: ParamStore) -> None:
    """ApplicationLogLevel switches debug lines on and off at once, without a restart."""

    def apply() -> None:
        logs.set_debug(params.get(APPLICATION_LOG_LEVEL) == "debug")

    apply()
    params.subscribe(lambda changed: apply() if APPLICATION_LOG_LEVEL in changed else None)


def _restart_on_settings(params: ParamStore, changed: frozenset[str], restart: Callable[[str], None]) -> None:
    """Every setting an operator changes restarts dockerd; the program's own (Status) does not."""
    settings = sorted(name for name in changed if not params.specs[name].readonly)
    if settings:
        restart(f"{', '.join(settings)} changed")


def up_command(args: argparse.Namespace) -> int:
    logs.configure(to_stdout=True)
    app_dir = args.app_dir.resolve()
    host, port = args.listen
    manifest_path = (args.manifest or config.find_manifest(app_dir)).resolve()
    return up(
        UpOptions(
            host=host,
            port=port,
            app_dir=app_dir,
            manifest_path=manifest_path,
            docker_address=args.docker_address,
            rootful=args.rootful,
            sd_card=args.sd_card.resolve() if args.sd_card else None,
        )
    )
