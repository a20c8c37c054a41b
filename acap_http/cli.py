"""The ``acap-http`` command: it parses, then hands over to the module that does the work.
Each command imports only what it needs, so ``run`` on a camera carries no certificate
tooling, HTTP client or web server it does not use.

    acap-http run      the camera application (FastCGI on $FCGI_SOCKET_NAME)
    acap-http up       that application behind a local Apache front (digest authentication)
    acap-http serve    the application as a host service: gunicorn, HTTPS, basic authentication
    acap-http install  install serve as a systemd service
    acap-http password set a user's password in serve's users file
    acap-http fleet    several instances of up on one host, with an Ansible inventory
    acap-http certs    make, check and upload the TLS files of dockerd and its clients
"""

# Imports inside the command functions are on purpose: each command imports what it needs.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from acap_http import config, identity, logs
from acap_http.errors import AcapHttpError
from acap_http.options import TLS_BY, TLS_BY_DOCKERD

APP_USER = config.APP_USER


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.command(args)
    except AcapHttpError as err:
        print(f"acap-http: {err}", file=sys.stderr)
        return 1
    return code


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _metrics_listen(text: str) -> tuple[str, int]:
    """``[HOST:]PORT``: a port alone listens on loopback."""
    return _host_port(text if ":" in text else f"127.0.0.1:{text}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acap-http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"acap-http {identity.VERSION}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _run_parser(commands)
    _up_parser(commands)
    _serve_parser(commands)
    _install_parser(commands)
    _password_parser(commands)
    _fleet_parser(commands)
    _certs_parser(commands)
    return parser


Commands = argparse._SubParsersAction  # the subcommands of acap-http


def _app_options(command: argparse.ArgumentParser, *, app_dir: Path, docker_address: str) -> None:
    """The options of the application itself, whatever serves it."""
    command.add_argument(
        "--app-dir", type=Path, default=app_dir, help="application directory holding localdata/ (default: %(default)s)"
    )
    command.add_argument(
        "--docker-address",
        default=docker_address,
        help="host address of dockerd's TCP socket (rootless: where it is forwarded from) (default: %(default)s)",
    )
    command.add_argument("--manifest", type=Path, help="manifest.json (default: the installed one, else APP_DIR's)")
    command.add_argument(
        "--tls-by",
        choices=TLS_BY,
        default=TLS_BY_DOCKERD,
        help="who ends TLS on the Docker API's port: dockerd, restarted for each new file (as on a camera), "
        "or the application's front, where a new file reaches no connected client (default: %(default)s)",
    )
    command.add_argument(
        "--api-client",
        action="append",
        default=[],
        metavar="NAME",
        help="with --tls-by front: let in only the client certificates whose subject's common name or a "
        "subject alternative name is NAME (repeatable; default: every certificate of the CA, as dockerd)",
    )
    command.add_argument(
        "--metrics-listen",
        type=_metrics_listen,
        metavar="[HOST:]PORT",
        help="also serve the Prometheus metrics at http://HOST:PORT/metrics, without authentication, as "
        "dockerd's metrics-addr (a port alone: 127.0.0.1; default: off; always at /local/APP/metrics)",
    )


def _run_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", help="serve the application on the FastCGI socket named by $FCGI_SOCKET_NAME (the camera entry point)"
    )
    run.add_argument("--stdout", action="store_true", help="log to standard output instead of syslog")
    _app_options(run, app_dir=config.CAMERA_APP_DIR, docker_address="0.0.0.0")
    run.add_argument(
        "--stop-grace",
        type=float,
        default=config.STOP_GRACE,
        help="seconds dockerd gets to stop after SIGTERM before SIGKILL (default: %(default)s)",
    )
    run.add_argument(
        "--sd-card-mount",
        type=Path,
        default=config.CAMERA_SD_MOUNT,
        help="where the SD card is mounted (default: %(default)s, as on the camera)",
    )
    run.add_argument(
        "--sd-card-area",
        type=Path,
        help="the application's directory on the card; dockerd's data go to AREA/data "
        f"(default: {config.CAMERA_SD_AREAS}/APPNAME, the manifest's appName, as on the camera)",
    )
    run.set_defaults(command=run_command)


def run_command(args: argparse.Namespace) -> int:
    from acap_http.options import Options
    from acap_http.servers.run import run

    logs.configure(to_stdout=args.stdout)
    return run(
        Options(
            app_dir=args.app_dir,
            manifest_path=args.manifest,
            docker_address=args.docker_address,
            tls_by=args.tls_by,
            api_clients=tuple(args.api_client),
            metrics_listen=args.metrics_listen,
            stop_grace=args.stop_grace,
            sd_card_mount=args.sd_card_mount,
            sd_card_area=args.sd_card_area,
        )
    )


def _host_options(command: argparse.ArgumentParser, listen: str) -> None:
    """The options of the fronts that play the camera on a host (up, serve)."""
    command.add_argument(
        "--listen", default=listen, type=_host_port, help="address and port of the front (default: %(default)s)"
    )
    command.add_argument(
        "--sd-card",
        type=Path,
        metavar="MOUNTPOINT",
        help="mount point of a removable disk to use as the SD card (SDCardSupport=yes puts dockerd's data there)",
    )
    command.add_argument(
        "--rootful",
        action="store_true",
        help="started as root, keep the app and dockerd as root (the legacy releases) instead of rootless",
    )
    command.add_argument(
        "--app-user",
        default=APP_USER,
        help="started as root, the user the app and dockerd run as, made when missing (default: %(default)s)",
    )
    _group_option(command)


def _group_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="rootless: a host group (video, render, dialout…) to map into containers after the manifest's "
        "(repeat; docker run --group-add N, N as the log says)",
    )


def _up_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    up = commands.add_parser("up", help="run the application behind a local Apache front with digest authentication")
    _app_options(up, app_dir=config.default_local_app_dir(), docker_address="127.0.0.1")
    _host_options(up, "127.0.0.1:8080")
    up.set_defaults(command=up_command)


def up_command(args: argparse.Namespace) -> int:
    from acap_http.options import HostOptions
    from acap_http.servers.local_front import up

    logs.configure(to_stdout=True)
    return up(HostOptions(**_host_options_of(args)))


def _host_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """What ``_app_options`` and ``_host_options`` parsed, as HostOptions' fields (up's, and serve's first)."""
    host, port = args.listen
    return {
        "host": host,
        "port": port,
        "app_dir": args.app_dir.resolve(),
        "manifest_path": args.manifest.resolve() if args.manifest else None,
        "docker_address": args.docker_address,
        "tls_by": args.tls_by,
        "api_clients": tuple(args.api_client),
        "metrics_listen": args.metrics_listen,
        "rootful": args.rootful,
        "sd_card": args.sd_card.resolve() if args.sd_card else None,
        "app_user": args.app_user,
        "groups": tuple(args.group),
    }


def _serve_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the application with gunicorn over HTTPS, as a host service")
    _app_options(serve, app_dir=config.default_local_app_dir(), docker_address="127.0.0.1")
    _host_options(serve, "127.0.0.1:8443")
    serve.add_argument("--cert", type=Path, help="the HTTPS certificate (default: made on the first start)")
    serve.add_argument("--key", type=Path, help="its key")
    serve.add_argument(
        "--users", type=Path, help="the users file (default: APP_DIR/serve/users, made on the first start)"
    )
    serve.add_argument("--stdout", action="store_true", help="log to standard output instead of syslog")
    serve.set_defaults(command=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    from acap_http.servers.serve import ServeOptions, serve

    logs.configure(to_stdout=args.stdout)
    return serve(ServeOptions(**_host_options_of(args), cert=args.cert, key=args.key, users=args.users))


def _install_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    install = commands.add_parser("install", help="install acap-http serve as a systemd service (as root)")
    install.add_argument(
        "--prefix", type=Path, default=Path("/opt/acap-http"), help="the program (default: %(default)s)"
    )
    install.add_argument(
        "--app-dir", type=Path, default=Path("/var/lib/acap-http"), help="the data (default: %(default)s)"
    )
    install.add_argument(
        "--config-dir", type=Path, default=Path("/etc/acap-http"), help="users, TLS (default: %(default)s)"
    )
    install.add_argument(
        "--unit-dir", type=Path, default=Path("/etc/systemd/system"), help="where the unit goes (default: %(default)s)"
    )
    install.add_argument("--listen", default="0.0.0.0:8443", type=_host_port, help="(default: %(default)s)")
    install.add_argument("--docker-address", default="0.0.0.0", help="(default: %(default)s)")
    install.add_argument(
        "--source", type=Path, help="the checkout to install from (default: none when run from PREFIX, else this one)"
    )
    install.add_argument("--no-enable", action="store_true", help="write everything, but do not enable or start it")
    _group_option(install)
    install.add_argument("--uninstall", action="store_true", help="remove what install made; say what stays")
    install.set_defaults(command=install_command)


def install_command(args: argparse.Namespace) -> int:
    from acap_http.servers import install as installing

    places = installing.Places(
        prefix=args.prefix, app_dir=args.app_dir, config_dir=args.config_dir, unit_dir=args.unit_dir
    )
    if args.uninstall:
        return installing.uninstall(places)
    source = args.source
    if source is None and Path(sys.prefix).resolve() != args.prefix.resolve():
        source = config.CHECKOUT_DIR
    return installing.install(places, source=source, listen=args.listen, docker_address=args.docker_address,
                              enable=not args.no_enable, groups=tuple(args.group))  # fmt: skip


def _password_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    password = commands.add_parser(
        "password", help="set a user's password in serve's users file (from $ACAP_HTTP_PASSWORD, else a prompt)"
    )
    password.add_argument("user", choices=["admin", "operator", "viewer"])
    password.add_argument(
        "--users", type=Path, default=Path("/etc/acap-http/users"), help="the users file (default: %(default)s)"
    )
    password.set_defaults(command=password_command)


def password_command(args: argparse.Namespace) -> int:
    import getpass
    import os

    from acap_http.servers.users import checked, set_password

    new = os.environ.get("ACAP_HTTP_PASSWORD")
    if new:
        new = checked(new, "$ACAP_HTTP_PASSWORD")
    else:
        new = getpass.getpass(f"New password for {args.user}: ")
        if getpass.getpass("Again: ") != new:
            print("acap-http: the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    for path in set_password(args.users, args.user, new):
        print(f"wrote {path}")
    print("serve reads the users file when it starts: systemctl restart acap-http (it stops the containers)")
    return 0


def _fleet_parser(commands: Commands[argparse.ArgumentParser]) -> None:
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


def fleet_command(args: argparse.Namespace) -> int:
    from acap_http.servers import fleet

    logs.configure(to_stdout=True)
    return fleet.run(args.dir.resolve(), args.count)


def _certs_parser(commands: Commands[argparse.ArgumentParser]) -> None:
    certs = commands.add_parser("certs", help="make, check and upload the TLS files of dockerd and its clients")
    actions = certs.add_subparsers(required=True, metavar="ACTION")
    init = actions.add_parser("init", help="make a CA, a server certificate and a client certificate")
    init.add_argument("--host", action="append", required=True, help="IP or DNS name the server is reached by (repeat)")
    init.add_argument("--out", type=Path, default=config.default_certs_dir(), help="directory (default: %(default)s)")
    init.add_argument("--key-type", choices=("rsa", "ec"), default="rsa", help="RSA 4096 (default) or EC P-256")
    init.add_argument("--force", action="store_true", help="replace files already there")
    init.set_defaults(command=certs_init_command)
    check = actions.add_parser("check", help="check a set of TLS files offline")
    check.add_argument("dir", type=Path, help="directory holding ca.pem, server-cert.pem, server-key.pem")
    check.add_argument("--host", action="append", default=[], help="a name the server certificate must cover")
    check.set_defaults(command=certs_check_command)
    push = actions.add_parser("push", help="upload the three server files to a running product as one set")
    push.add_argument("--url", required=True, help="the product's front, e.g. http://127.0.0.1:8080")
    push.add_argument("--user", required=True, help="an admin user of the front")
    push.add_argument("--dir", type=Path, default=config.default_certs_dir(), help="directory (default: %(default)s)")
    push.add_argument("--cacert", type=Path, help="the CA (or certificate) to verify an HTTPS front with")
    push.set_defaults(command=certs_push_command)


def certs_init_command(args: argparse.Namespace) -> int:
    from acap_http.tls import commands

    return commands.init(args.host, args.out, args.key_type, args.force)


def certs_check_command(args: argparse.Namespace) -> int:
    from acap_http.tls import commands

    return commands.check(args.dir, args.host)


def certs_push_command(args: argparse.Namespace) -> int:
    from acap_http.tls import commands

    return commands.push(args.url, args.user, args.dir, str(args.cacert) if args.cacert else True)
