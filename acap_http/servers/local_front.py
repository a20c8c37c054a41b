"""``acap-http up``: the camera's surroundings on an ordinary Linux host.

It plays the part of the camera firmware: writes the Apache front for the
manifest, starts the application exactly as the camera would (``acap-http
run`` with ``FCGI_SOCKET_NAME``), starts Apache, tells the operator how to
reach it, and stops both on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from acap_http import config
from acap_http import manifest as manifest_module
from acap_http.config import AppPaths
from acap_http.filestore import FileStore
from acap_http.manifest import Manifest
from acap_http.options import HostOptions, Options, address
from acap_http.servers import apache, app_user
from acap_http.servers.children import Child
from acap_http.servers.lifecycle import Stop
from acap_http.servers.users import USERS, Password, read_passwords
from acap_http.tls.files import TLS_FILES

SOCKET_DIR = "app"
SOCKET_NAME = "fcgi.sock"


def up(options: HostOptions) -> int:
    """Run the front and the app until a signal or until one of them stops."""
    options.check_rootful("up")
    manifest_file = options.manifest_file()
    manifest = manifest_module.load(manifest_file)
    binary = apache.find_apache()
    paths = AppPaths(options.app_dir)
    passwords = read_passwords(paths)
    users = [apache.FrontUser(name, access, passwords[name].value) for name, access, _ in USERS]

    stop = Stop()
    user = app_user.for_front(options, manifest)
    application = options.application(manifest_file, manifest.app_name)
    runtime_dir = _make_runtime_dir(user)
    try:
        site = _write_site(manifest, options, runtime_dir, users)
        app = _start_app(application, manifest.app_name, site.socket_path, user)
        app.watch(stop.post)
        front = apache.ApacheProcess(binary, site)
        try:
            front.start()
            front.child.watch(stop.post)
            _print_banner(manifest, options, paths, passwords)
            reason = stop.wait()
        finally:
            front.stop()
            app.stop()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    return 0 if reason in ("SIGINT", "SIGTERM") else 1


def _make_runtime_dir(user: app_user.AppUser | None) -> Path:
    """A private directory that Apache's workers can enter, for the configuration and the socket.

    It stays root's; the app's user owns only SOCKET_DIR inside it, where it creates its socket.
    """
    base = "/run" if os.access("/run", os.W_OK) else None
    runtime_dir = Path(tempfile.mkdtemp(prefix="acap-http-", dir=base))
    socket_dir = runtime_dir / SOCKET_DIR
    socket_dir.mkdir()
    if os.geteuid() == 0:
        web_group = app_user.system_user(apache.RUN_AS).gid
        os.chown(runtime_dir, -1, web_group)
        os.chmod(runtime_dir, 0o751)  # the app's user passes through to its socket directory
        os.chown(socket_dir, user.uid if user else -1, web_group)
        # setgid: the app's socket is born in the front's group, which the app is not in; nobody
        # else may enter (www-data and other users get "permission denied" before the socket).
        os.chmod(socket_dir, 0o2750)
    (runtime_dir / "htdocs").mkdir()
    return runtime_dir


def _write_site(
    manifest: Manifest, options: HostOptions, runtime_dir: Path, users: list[apache.FrontUser]
) -> apache.Site:
    site = apache.Site(
        host=options.host,
        port=options.port,
        runtime_dir=runtime_dir,
        socket_path=runtime_dir / SOCKET_DIR / SOCKET_NAME,
        run_as=apache.RUN_AS if os.geteuid() == 0 else None,
    )
    files = FileStore(runtime_dir)
    files.write(site.config_path.name, apache.render_config(manifest, site).encode(), 0o644)
    files.write(site.digest_path.name, apache.digest_file(users).encode(), 0o640)
    files.write(site.groups_path.name, apache.group_file(users).encode(), 0o640)
    files.write(site.levels_path.name, apache.levels_file(users).encode(), 0o640)
    if os.geteuid() == 0:
        gid = grp.getgrnam(apache.RUN_AS).gr_gid
        for path in (site.digest_path, site.groups_path, site.levels_path):
            os.chown(path, -1, gid)
    return site


def _start_app(options: Options, app_name: str, socket_path: Path, user: app_user.AppUser | None) -> Child:
    """``acap-http run`` as the camera starts it, ready once its socket accepts."""
    command = [sys.executable, "-m", "acap_http", "run", *run_arguments(options, app_name)]
    env = {**config.MALLOC_ARENAS, **os.environ, "FCGI_SOCKET_NAME": str(socket_path)}
    for _, _, variable in USERS:
        env.pop(variable, None)  # the app has no use for them
    app = Child("acap-http run", command, env=env, user=(user.uid, user.gid) if user else None)
    app.start(lambda: _accepts(socket_path), what="serving its FastCGI socket")
    return app


def run_arguments(options: Options, app_name: str) -> list[str]:
    """``acap-http run``'s command line for ``options``, every place spelt out (the card's too): the
    child serves what ``serve``'s worker would, and derives nothing of its own."""
    return [
        "--stdout", "--app-dir", str(options.app_dir), "--manifest", str(options.manifest_file()),
        "--docker-address", options.docker_address, "--tls-by", options.tls_by,
        *(f"--api-client={name}" for name in options.api_clients),  # one argument: a name may begin with -
        *([f"--metrics-listen={address(*options.metrics_listen)}"] if options.metrics_listen else []),
        "--sd-card-mount", str(options.sd_card_mount), "--sd-card-area", str(options.card_area(app_name)),
    ]  # fmt: skip


def _accepts(path: Path) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.connect(str(path))
        return True
    return False


def _print_banner(manifest: Manifest, options: HostOptions, paths: AppPaths, passwords: dict[str, Password]) -> None:
    url = f"http://{options.host}:{options.port}"
    admin = USERS[0][0]
    auth = f'--anyauth -u "{admin}:{passwords[admin].shell}"'
    first = manifest.endpoints[0].name if manifest.endpoints else "ca.pem"
    names = ", ".join([*TLS_FILES, "daemon.json"])
    param_cgi = f"{url}/axis-cgi/param.cgi?action"
    lines = [
        "",
        f"acap-http is up: {manifest.friendly_name} ({manifest.app_name}) behind Apache at {url}/",
        *([f"  settings page (in a browser): {url}{manifest.local_prefix}"] if manifest.setting_page else []),
        *(f"  user {name:9} ({access.word}) password {passwords[name].source}" for name, access, _ in USERS),
        f"  files:     {names} land in {paths.localdata}",
        "  upload:",
        f"    curl {auth} -F file=@{first} -X POST {url}{manifest.local_prefix}{first}",
        "  delete:",
        f"    curl {auth} -X DELETE {url}{manifest.local_prefix}{first}",
        "  settings:",
        f'    curl {auth} "{param_cgi}=list&group=root.{manifest.app_name}"',
        f'    curl {auth} "{param_cgi}=update&root.{manifest.app_name}.UseTLS=yes"',
        *(
            [f"  metrics (Prometheus, viewers): {url}{manifest.local_prefix}metrics"]
            if any(endpoint.name == "metrics" for endpoint in manifest.endpoints)
            else []
        ),
        *(
            [f"  metrics without authentication: http://{address(*options.metrics_listen)}/metrics"]
            if options.metrics_listen
            else []
        ),
        "  docker, once the three files are uploaded (Status 0 RUNNING):",
        "    docker --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem "
        f"-H tcp://{options.docker_address}:2376 version",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
