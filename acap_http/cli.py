"""The ``acap-http`` command: argument parsing, logging set-up, and the one
place where the application's parts are put together.

    acap-http run [--stdout]   the camera application (FastCGI on $FCGI_SOCKET_NAME)
    acap-http up               that application behind a local Apache front
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from acap_http import __version__, certtool, config, logs, tlsset
from acap_http import manifest as manifest_module
from acap_http.app import AcapApp
from acap_http.errors import AcapHttpError
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.params import ParamStore
from acap_http.servers import app_user, fleet
from acap_http.servers.fastcgi import FastCgiServer
from acap_http.servers.local_front import UpOptions, up
from acap_http.status import Status
from acap_http.supervisor.command import Host, runtime_dir_of
from acap_http.supervisor.core import Supervisor
from acap_http.supervisor.runner import STOP_GRACE
from acap_http.supervisor.sdcard import CAMERA_AREA, CAMERA_MOUNT, CardPlace, CardWatcher
from acap_http.supervisor.settings import STATUS, Settings
from acap_http.tlsstore import TlsStore

logger = logging.getLogger(__name__)

SOCKET_ENV = "FCGI_SOCKET_NAME"
APPLICATION_LOG_LEVEL = "ApplicationLogLevel"
DEFAULT_APP_NAME = config.CAMERA_APP_DIR.name


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
    up.add_argument(
        "--app-user",
        default=app_user.NAME,
        help="started as root, the user the app and dockerd run as, made when missing (default: %(default)s)",
    )
    up.add_argument("--manifest", type=Path, help="manifest.json (default: the checkout's)")
    up.set_defaults(command=up_command)

    fleet = commands.add_parser(
        "fleet", help="run several independent instances of up on one host, with an Ansible inventory of them"
    )
    fleet.add_argument("--count", type=int, default=3, help="how many (default: %(default)s)")
    fleet.add_argument(
        "--dir",
        type=Path,
        default=config.default_local_app_dir().parent / "fleet",
        help="their app directories, logs and inventory.yml (default: %(default)s)",
    )
    fleet.set_defaults(command=fleet_command)

    certs = commands.add_parser("certs", help="make, check and upload the TLS files of dockerd and its clients")
    certs_commands = certs.add_subparsers(required=True, metavar="ACTION")
    init = certs_commands.add_parser("init", help="make a CA, a server certificate and a client certificate")
    init.add_argument("--host", action="append", required=True, help="IP or DNS name the server is reached by (repeat)")
    init.add_argument("--out", type=Path, default=config.default_certs_dir(), help="directory (default: %(default)s)")
    init.add_argument("--key-type", choices=("rsa", "ec"), default="rsa", help="RSA 4096 (default) or EC P-256")
    init.add_argument("--force", action="store_true", help="replace files already there")
    init.set_defaults(command=certs_init_command)
    check = certs_commands.add_parser("check", help="check a set of TLS files offline")
    check.add_argument("dir", type=Path, help="directory holding ca.pem, server-cert.pem, server-key.pem")
    check.add_argument("--host", action="append", default=[], help="a name the server certificate must cover")
    check.set_defaults(command=certs_check_command)
    push = certs_commands.add_parser("push", help="upload the three server files to a running product as one set")
    push.add_argument("--url", required=True, help="the product's front, e.g. http://127.0.0.1:8080")
    push.add_argument("--user", required=True, help="an admin user of the front")
    push.add_argument("--dir", type=Path, default=config.default_certs_dir(), help="directory (default: %(default)s)")
    push.set_defaults(command=certs_push_command)
    return parser


def certs_init_command(args: argparse.Namespace) -> int:
    written = certtool.init(args.host, args.out, key_type=args.key_type, force=args.force)
    out = args.out
    for path in written:
        print(f"wrote {path}")
    host = args.host[0]
    print(
        "\nNext:\n"
        f"  acap-http certs push --url http://127.0.0.1:8080 --user admin --dir {out}\n"
        f"  docker --tlsverify --tlscacert {out}/ca.pem --tlscert {out}/cert.pem --tlskey {out}/key.pem "
        f"-H tcp://{host}:2376 version\n"
        f'  docker context create acap --docker "host=tcp://{host}:2376,ca={out}/ca.pem,'
        f'cert={out}/cert.pem,key={out}/key.pem" && docker --context acap version'
    )
    return 0


def certs_check_command(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise AcapHttpError(f"cannot read {args.dir}: no such directory")
    try:
        found = tlsset.findings(certtool.read_set(args.dir), hosts=args.host)
    except OSError as err:
        raise AcapHttpError(f"cannot read {args.dir}: {err.strerror}") from err
    for finding in found:
        print(finding)
    return 1 if any(finding.level is tlsset.Level.FAIL for finding in found) else 0


def certs_push_command(args: argparse.Namespace) -> int:
    files = certtool.read_server_set(args.dir)
    password = os.environ.get("ACAP_HTTP_PASSWORD") or _ask_password(args.user)
    try:
        app_name = manifest_module.load(config.find_manifest(config.CAMERA_APP_DIR)).app_name
    except AcapHttpError:
        app_name = DEFAULT_APP_NAME  # a client without the checkout pushes to the usual name
    front = certtool.Front(args.url, args.user, password, app_name)
    before = front.status()
    status, body, restart = front.push(files)
    print(f"{status} {body.strip()}".strip())
    if restart:
        print(f"dockerd: {restart}")
    if status != 204:
        return 1
    # No restart when the set was there already or dockerd would refuse it: Status is as it was.
    settled = front.status() if restart else front.status_after_restart(before)
    print(f"Status: {settled}")
    return 0


def _ask_password(user: str) -> str:
    no_password = AcapHttpError("no password: set ACAP_HTTP_PASSWORD, or run this in a terminal")
    if not sys.stdin.isatty():
        raise no_password
    try:
        return getpass.getpass(f"password of {user}: ")
    except EOFError:
        raise no_password from None


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
    tls_store = TlsStore(paths.localdata)
    tls_store.recover()  # a set upload a crash interrupted is completed or discarded before anyone reads it
    params = ParamStore.from_manifest(manifest, paths.app_dir)
    _follow_log_level(params)
    uid = os.geteuid()
    host = Host(
        rootless=uid != 0,
        app_dir=app_dir,
        runtime_dir=runtime_dir_of(uid),
        address=args.docker_address,
        path=os.environ.get("PATH", ""),
        uid=uid,
        gid=os.getegid(),
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
        TlsEndpoints(
            tls_store,
            supervisor.request_restart,
            tls_in_use=lambda: Settings.read(params.get, params.is_on).tls_on_tcp,
        ),
        ParamCgi(params, manifest.app_name),
    )

    # The main thread owns the signals; handlers only post, the loop below acts.
    events: queue.SimpleQueue[str] = queue.SimpleQueue()
    # SIGHUP too: a closed terminal must not leave dockerd behind.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, _frame: events.put(signal.Signals(received).name))
    server = FastCgiServer(app, Path(socket_name), on_exit=lambda: events.put("FastCGI server ended"))
    server.start()
    mode = "rootless, in rootlesskit's namespaces" if host.rootless else "rootful, as root"
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


def fleet_command(args: argparse.Namespace) -> int:
    logs.configure(to_stdout=True)
    return fleet.run(args.dir.resolve(), args.count)


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
            app_user=args.app_user,
        )
    )
