"""``acap-http serve``: the application as a host service, served by gunicorn over HTTPS.

gunicorn's master (this process, root when started so) binds the port, reads the TLS
key and the users file, builds the TLS context and then forks one worker with threads,
which drops to the app's user (rootless, as ``up`` does) and holds the application: its
supervisor and so dockerd live and die with the worker. A worker gunicorn replaces is an
application restart. The TLS key and the password hashes never have to be readable by the
app's user, whom docker clients control: the worker inherits them in memory.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from acap_http import config
from acap_http import manifest as manifest_module
from acap_http.application import Application
from acap_http.config import AppPaths
from acap_http.errors import SetupError
from acap_http.escape import printable
from acap_http.options import HostOptions, Options
from acap_http.safedir import LinkRefused, SafeDir
from acap_http.servers import app_user
from acap_http.servers.auth import Front
from acap_http.servers.heads import HeadReadingWorker
from acap_http.servers.notify import Notifier
from acap_http.servers.users import HashedUser, read_passwords, read_users_file, users_file
from acap_http.status import Status
from acap_http.tls import making

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

logger = logging.getLogger(__name__)

THREADS = 16
# As the Apache front's RequestReadTimeout: a client that sends nothing for this long (in the
# TLS handshake, the request line, the headers or the body) loses its connection, and the
# worker its thread back; a body that stops coming is answered 408.
READ_TIMEOUT = 10.0
# The application's stop begins when the worker is told to stop, beside the requests it finishes;
# gunicorn waits for both before it kills the worker.
GRACEFUL_TIMEOUT = config.SERVE_GRACEFUL_STOP
# Once the application has stopped, what the requests still in flight get before the worker leaves.
DRAIN_AFTER_STOP = 5.0
SETTLED = frozenset(Status) - {Status.NOT_STARTED, Status.DOCKERD_STOPPED}


@dataclass(frozen=True, kw_only=True)
class ServeOptions(HostOptions):
    """A front's options, and serve's own: its HTTPS pair and users file (made on the first start)."""

    cert: Path | None = None
    key: Path | None = None
    users: Path | None = None


def serve(options: ServeOptions) -> int:
    options.check_rootful("serve")
    if (options.cert is None) != (options.key is None):
        raise SetupError("--cert and --key go together")
    manifest_file = options.manifest_file()
    manifest = manifest_module.load(manifest_file)
    paths = AppPaths(options.app_dir)
    with _private_dir(paths.app_dir / "serve") as private:
        users = _users(options, paths, private)
        context, fingerprint, tls_files = _tls(options, private)
    user = app_user.for_front(options, manifest)
    worker_ids = (user.uid, user.gid) if user else None
    # Readiness is the application's to tell (once Status is known), not gunicorn's (once it boots).
    notifier = Notifier(os.environ.pop("NOTIFY_SOCKET", None))
    application_options = options.application(manifest_file, manifest.app_name)
    logger.info("Serving https://%s:%d/ (certificate SHA-256 %s)", options.host, options.port, fingerprint)
    Service(
        options=options, application_options=application_options, manifest=manifest, users=users,
        context=context, tls_files=tls_files, worker_ids=worker_ids, notifier=notifier,
    ).run()  # fmt: skip
    return 0


class Service(BaseApplication):  # type: ignore[misc]
    """gunicorn with one worker of threads that holds the application."""

    def __init__(
        self,
        *,
        options: ServeOptions,
        application_options: Options,
        manifest: manifest_module.Manifest,
        users: dict[str, HashedUser],
        context: ssl.SSLContext,
        tls_files: tuple[Path, Path],
        worker_ids: tuple[int, int] | None,
        notifier: Notifier,
    ) -> None:
        self._options, self._application_options = options, application_options
        self._manifest, self._users, self._context, self._tls_files = manifest, users, context, tls_files
        self._worker_ids, self._notifier = worker_ids, notifier
        self._application: Application | None = None
        self._ready = False
        self._stop_once = threading.Lock()
        self._stopping: threading.Thread | None = None
        super().__init__()

    def run(self) -> None:
        """gunicorn's master, without the signals that would run a second application beside the first."""
        _Master(self).run()

    def load_config(self) -> None:
        settings: dict[str, Any] = {
            "bind": [f"[{self._options.host}]:{self._options.port}" if ":" in self._options.host
                     else f"{self._options.host}:{self._options.port}"],
            "workers": 1,
            "worker_class": _Worker,
            "threads": THREADS,
            # No heartbeat deadline: the worker holds the application, and so dockerd and the
            # containers, which a worker killed for a late heartbeat (a request that held the GIL)
            # would take down with it. No request is slow by design: the costliest check, an RSA
            # key, takes under a millisecond (OpenSSL's check of its primes, seconds, is not used).
            "timeout": 0,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "keepalive": 5,
            # The Apache front's limits: 8,190 bytes of request line and of each header field (gunicorn
            # counts a field's CR LF, Apache does not), 100 fields.
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190 + 2,
            # TLS: gunicorn checks the files are there (the master, root, reads them); the worker uses
            # the context built here, and never has to read the key.
            "certfile": str(self._tls_files[0]),
            "keyfile": str(self._tls_files[1]),
            "ssl_context": lambda conf, default: self._context,
            "post_worker_init": self._worker_ready,
            "accesslog": "-",
            "access_log_format": '%(h)s %(u)s "%(r)s" %(s)s %(b)s',
            "logger_class": _EscapedLogger,
            # No proxy in front: no client may set the scheme or SCRIPT_NAME by a header.
            "forwarded_allow_ips": "",
            "control_socket_disable": True,
            "proc_name": "acap-http serve",
            "worker_exit": self._worker_exit,
        }  # fmt: skip
        if self._worker_ids:
            settings["user"], settings["group"] = (str(number) for number in self._worker_ids)
        for name, value in settings.items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)

    def load(self) -> WSGIApplication:
        """In the worker, as the app's user: the application, started, behind the front."""
        application = Application(self._application_options)
        application.on_status(self._status)
        self._application = application
        application.start()
        return Front(application.wsgi, self._manifest, self._users)

    def _status(self, status: Status) -> None:
        state = f"STATUS={status.value}"
        if status in SETTLED and not self._ready:
            self._ready = True  # once: systemd needs it once (a replaced worker says it again: harmless)
            state = "READY=1\n" + state
        self._notifier.send(state)

    def _worker_ready(self, worker: Any) -> None:
        """In the worker: SIGTERM (the master stopping) starts the application's stop at once, while
        the threads finish the requests in flight; a slow client no longer delays it."""
        worker.log.error_log.addFilter(_ReadTimeoutLine())
        finish_requests = worker.handle_exit

        def stop(number: int, frame: Any) -> None:
            finish_requests(number, frame)
            self._stopping = threading.Thread(target=self._stop_then_leave, args=(worker,), name="stop", daemon=True)
            self._stopping.start()

        signal.signal(signal.SIGTERM, stop)

    def _worker_exit(self, server: object, worker: object) -> None:
        """gunicorn is done with this worker: dockerd and everything under it are gone before it goes."""
        if self._stopping is not None:
            self._stopping.join()
        self._stop_application()

    def _stop_then_leave(self, worker: Any) -> None:
        """The application's stop; then the requests still in flight get DRAIN_AFTER_STOP, and the
        worker leaves, whatever its threads still read: a client that trickles its request would
        otherwise hold the service's stop for gunicorn's whole graceful timeout. Nothing is left
        to clean up by then: the application, dockerd and everything under it have stopped."""
        self._stop_application()
        deadline = time.monotonic() + DRAIN_AFTER_STOP
        while getattr(worker, "nr_conns", 0) > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        if getattr(worker, "nr_conns", 0) > 0:
            logger.warning("Closing %d connection(s) still open %.0f s after the application stopped",
                           worker.nr_conns, DRAIN_AFTER_STOP)  # fmt: skip
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0)

    def _stop_application(self) -> None:
        with self._stop_once:
            application, self._application = self._application, None
            if application is not None:
                self._notifier.send("STOPPING=1")
                application.stop()


class _Worker(HeadReadingWorker):
    """gthread, reading each request's head without a thread: a client silent for READ_TIMEOUT is cut."""

    silence = READ_TIMEOUT


class TimedSocket(ssl.SSLSocket):
    """A TLS connection whose blocking reads wait at most READ_TIMEOUT for data.

    gunicorn's threads read a request's body blocking (``setblocking(True)``, no deadline): a
    client that stops half-way through its body would hold a thread for good. Here blocking
    means blocking with a deadline. (The head is read by the worker's poller, without a thread.)
    """

    def setblocking(self, flag: bool) -> None:
        super().setblocking(flag)
        if flag:
            self.settimeout(READ_TIMEOUT)

    def do_handshake(self, block: bool = False) -> None:
        if self.gettimeout() is None:
            self.settimeout(READ_TIMEOUT)
        super().do_handshake(block)


class _ReadTimeoutLine(logging.Filter):
    """gunicorn logs a connection that timed out as a socket error with a traceback; one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], TimeoutError):
            record.msg, record.args, record.exc_info = (
                "Closed a connection: nothing came from the client for %.0f s", (READ_TIMEOUT,), None,
            )  # fmt: skip
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _Master(Arbiter):  # type: ignore[misc]
    """gunicorn's master. A reload (SIGHUP), a binary upgrade (SIGUSR2) or one more worker (SIGTTIN)
    would start a second application on the same data while the first stops: refused, said why."""

    def handle_hup(self) -> None:
        self._refuse("SIGHUP (reload)")

    def handle_usr2(self) -> None:
        self._refuse("SIGUSR2 (upgrade)")

    def handle_ttin(self) -> None:
        self._refuse("SIGTTIN (one more worker)")

    def handle_ttou(self) -> None:
        self._refuse("SIGTTOU (one worker less)")

    def _refuse(self, what: str) -> None:
        self.log.warning("Ignored %s: one worker holds the application; restart the service instead", what)


class _EscapedLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, every field of the access line escaped: the user name and the request
    line are the client's, and a line break in them would forge a line of the log."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {key: printable(value) if isinstance(value, str) else value for key, value in atoms.items()}


def _private_dir(directory: Path) -> SafeDir:
    """A directory only this user may enter, opened without following a link."""
    try:
        private = SafeDir.open(directory, create_mode=0o700)
    except LinkRefused as err:
        raise SetupError(f"{err}; remove it") from None
    if private.stat().st_uid != os.geteuid():
        private.close()
        raise SetupError(f"{directory} belongs to another user; remove it")
    os.fchmod(private.fd, 0o700)
    return private


def _users(options: ServeOptions, paths: AppPaths, private: SafeDir) -> dict[str, HashedUser]:
    """The users file given, else one made from the fronts' passwords (kept, or from the environment)."""
    if options.users is not None:
        try:
            return read_users_file(options.users.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SetupError(f"cannot read the users file {options.users}: {err}") from None
    passwords = {name: password.value for name, password in read_passwords(paths).items()}
    private.write("users", users_file(passwords).encode(), 0o600)
    return read_users_file(private.read("users").decode())


def _tls(options: ServeOptions, private: SafeDir) -> tuple[ssl.SSLContext, str, tuple[Path, Path]]:
    """The server's TLS context, from the files given or from a pair made on the first start."""
    if options.cert is None or options.key is None:
        if not (private.is_file("tls-cert.pem") and private.is_file("tls-key.pem")):
            cert_pem, key_pem = making.front_pair(options.host)
            private.write("tls-key.pem", key_pem, 0o600)
            private.write("tls-cert.pem", cert_pem, 0o644)
            logger.info("Made a TLS certificate for the front in %s", private.path / "tls-cert.pem")
        cert_path, key_path = private.path / "tls-cert.pem", private.path / "tls-key.pem"
        # Read through the directory held open: its parent is the app user's, who could put
        # another directory in its place by now.
        held = Path(f"/proc/self/fd/{private.fd}")
        cert_read, key_read = held / "tls-cert.pem", held / "tls-key.pem"
    else:
        cert_path, key_path = cert_read, key_read = options.cert, options.key
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = TimedSocket
    try:
        context.load_cert_chain(str(cert_read), str(key_read), password=_no_passphrase(key_path))
        pem = cert_read.read_bytes()
    except (OSError, ssl.SSLError) as err:
        raise SetupError(f"cannot use the TLS files {cert_path} and {key_path}: {err}") from None
    fingerprint = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex(":").upper()
    return context, fingerprint, (cert_path, key_path)


def _no_passphrase(key_path: Path) -> Callable[[], str]:
    """A service starts unattended: an encrypted key is an error to say, not a prompt to wait at."""

    def refuse() -> str:
        raise SetupError(f"the key {key_path} is encrypted: give serve a key without a passphrase")

    return refuse
