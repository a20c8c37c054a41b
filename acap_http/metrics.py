"""The application's health, for Prometheus: counted as things happen (dockerd's restarts by cause,
its reloads and crashes, how long a restart took, uploads and parameter updates by result) and
read at each scrape (Status, the stored certificates' time left, whether dockerd would take the
stored set, the containers running, the application's start time and version).

Served by the application at ``/local/<app>/metrics`` (the manifest's entry, at the viewer level:
``serve`` also answers it at ``/metrics``), and, with ``--metrics-listen``, on a listener of its own
without authentication, as dockerd's ``metrics-addr``: loopback unless told otherwise. Nothing a
client sent reaches a label: every label value is one of a fixed set.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from werkzeug.wrappers import Request, Response

from acap_http.escape import printable
from acap_http.options import address
from acap_http.status import Status
from acap_http.supervisor.events import Cause
from acap_http.tls.files import CA, SERVER_CERT, TLS_FILES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

logger = logging.getLogger(__name__)

# No ``_created`` series beside each counter and histogram: the start time says it once.
# (prometheus_client leaves the function unannotated.)
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "acap_http"
METRICS = "metrics"  # the manifest's httpConfig entry (``/local/<app>/metrics``)
# Upload results: stored (a restart or reload follows), unchanged (the same content: nothing done),
# refused (a file that is not what its name needs, or a malformed request), failed (the disk).
UPLOAD_RESULTS = ("stored", "unchanged", "refused", "failed")
UPLOAD_TARGETS = (*TLS_FILES, "set")
# Parameter updates (param.cgi and the Param API): ok, refused (an unknown name, a bad value), failed.
PARAM_RESULTS = ("ok", "refused", "failed")
# From a SIGHUP (tens of ms) to a stack brought up anew after a crash's backoff (minutes).
RESTART_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CERTIFICATES = {"ca": CA, "server": SERVER_CERT}  # the label, and the file
RELOAD_CAUSES = (Cause.UPLOAD, Cause.SETTING)  # what can be taken without a restart
READ_TIMEOUT = 10.0  # seconds a connection to the listener lasts at most
CONNECTIONS = 8  # connections the listener serves at once (a scraper needs one)


@dataclass(frozen=True)
class Readings:
    """Where the values read at each scrape come from (the application's parts, or fakes in tests)."""

    status: Callable[[], str]  # the Status parameter's value
    running: Callable[[], bool]  # the application (control.cgi's start and stop)
    tls: Callable[[], dict[str, object]]  # the TLS store's summary (kept while the files are the same)
    dockerd: Callable[[], dict[str, object]]  # dockerd's facts (kept a few seconds)


class Metrics:
    """The application's registry: its counters, and what it reads at each scrape."""

    def __init__(self, readings: Readings, app_name: str, version: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._restarts = Counter(
            f"{PREFIX}_dockerd_restarts", "dockerd started again while the application runs, by cause "
            "(counted once it answers)", ["cause"], registry=registry,
        )  # fmt: skip
        self._reloads = Counter(
            f"{PREFIX}_dockerd_reloads", "Changes taken without a restart (dockerd's SIGHUP for daemon.json, "
            "the API's front for TLS files), by cause", ["cause"], registry=registry,
        )  # fmt: skip
        self._crashes = Counter(
            f"{PREFIX}_dockerd_crashes", "dockerd, or the stack under it, stopped unasked", registry=registry
        )
        self._restart_seconds = Histogram(
            f"{PREFIX}_dockerd_restart_duration_seconds", "From the change (or crash) to dockerd answering again",
            ["cause"], buckets=RESTART_BUCKETS, registry=registry,
        )  # fmt: skip
        self._uploads = Counter(
            f"{PREFIX}_tls_uploads", "Uploads of TLS files, by file (set: the three at once) and result",
            ["file", "result"], registry=registry,
        )  # fmt: skip
        self._param_updates = Counter(
            f"{PREFIX}_param_updates", "Parameter updates (param.cgi, the Param API), by result", ["result"],
            registry=registry,
        )  # fmt: skip
        self._started = Gauge(f"{PREFIX}_start_time_seconds", "When the application started (Unix time)",
                              registry=registry)  # fmt: skip
        Info(f"{PREFIX}_build", "The application and its version", registry=registry).info(
            {"app": app_name, "version": version}
        )
        # Every series exists from the start, at 0: a rate over a counter that appears late misses its first events.
        for cause in Cause:
            self._restarts.labels(cause.value)
            self._restart_seconds.labels(cause.value)
        for cause in RELOAD_CAUSES:
            self._reloads.labels(cause.value)
        for target in UPLOAD_TARGETS:
            for result in UPLOAD_RESULTS:
                self._uploads.labels(target, result)
        for result in PARAM_RESULTS:
            self._param_updates.labels(result)
        registry.register(_Readings(readings))

    def started(self, at: float | None = None) -> None:
        self._started.set(time.time() if at is None else at)

    # --- the supervisor's Counts ---------------------------------------------------------------

    def restarted(self, cause: Cause, seconds: float) -> None:
        self._restarts.labels(cause.value).inc()
        self._restart_seconds.labels(cause.value).observe(max(seconds, 0.0))

    def reloaded(self, cause: Cause) -> None:
        self._reloads.labels(cause.value).inc()

    def crashed(self) -> None:
        self._crashes.inc()

    # --- what the endpoints report --------------------------------------------------------------

    def uploaded(self, target: str, result: str) -> None:
        """An upload of ``target`` (a TLS file's name, or ``set``) ended with ``result``."""
        if target in UPLOAD_TARGETS and result in UPLOAD_RESULTS:
            self._uploads.labels(target, result).inc()

    def param_updated(self, result: str) -> None:
        if result in PARAM_RESULTS:
            self._param_updates.labels(result).inc()

    # --- exposition ------------------------------------------------------------------------------

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (OpenMetrics, else Prometheus' text format),
        and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def view(self, request: Request) -> Response:
        """``GET /local/<app>/metrics``."""
        body, content_type = self.exposition(request.headers.get("Accept"))
        response = Response(body, status=200, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response


class _Readings(Collector):
    """The values read at each scrape."""

    def __init__(self, readings: Readings) -> None:
        self._readings = readings

    def describe(self) -> Iterable[Metric]:
        return []  # read at each scrape: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        readings = self._readings
        parts: tuple[tuple[str, Callable[[], Iterable[Metric]]], ...] = (
            ("Status", lambda: _status(readings.status(), readings.running())),
            ("the TLS files", lambda: _tls(readings.tls())),
            ("dockerd", lambda: _containers(readings.dockerd())),
        )
        for what, part in parts:
            try:
                families = list(part())
            except Exception as err:  # one part that cannot be read takes neither the others nor the scrape
                logger.warning("The metrics could not read %s: %s", what, printable(str(err)))
                continue
            yield from families


def _status(value: str, running: bool) -> Iterator[Metric]:
    status = GaugeMetricFamily(f"{PREFIX}_status", "The Status parameter's code (0: dockerd runs)")
    try:
        status.add_metric([], Status(value).code)
    except ValueError:
        head = value.partition(" ")[0]
        if head.lstrip("-").isdigit():  # a Status of another release: its code is still its code
            status.add_metric([], int(head))
    yield status
    yield GaugeMetricFamily(f"{PREFIX}_application_running", "1 while the application runs (control.cgi)", int(running))


def _containers(facts: dict[str, object]) -> Iterator[Metric]:
    running = facts.get("containers_running") if facts.get("answers") else None
    containers = GaugeMetricFamily(f"{PREFIX}_containers_running", "Containers running (while dockerd answers)")
    if isinstance(running, int):
        containers.add_metric([], running)
    yield containers


def _tls(summary: dict[str, object]) -> Iterator[Metric]:
    """Seconds until each stored certificate file's first notAfter, and dockerd's verdict on the set."""
    now = datetime.datetime.now(datetime.UTC)
    expiry = GaugeMetricFamily(
        f"{PREFIX}_tls_cert_expiry_seconds",
        "Seconds until the stored certificate expires (the soonest of a bundle; negative: expired)",
        labels=["file"],
    )
    for label, name in CERTIFICATES.items():
        entry = summary.get(name)
        certificates = entry.get("certificates") if isinstance(entry, dict) else None
        if certificates:
            ends = [datetime.datetime.fromisoformat(each["not_valid_after"]) for each in certificates]
            expiry.add_metric([label], (min(ends) - now).total_seconds())
    yield expiry
    accepted = GaugeMetricFamily(
        f"{PREFIX}_tls_set_accepted", "1 if dockerd would start with the stored set, 0 if it would refuse it "
        "(absent while a file is missing)",
    )  # fmt: skip
    stored = [summary.get(name) for name in TLS_FILES]
    if all(isinstance(entry, dict) and entry.get("present") for entry in stored):
        accepted.add_metric([], int(bool(summary.get("dockerd_would_start"))))
    yield accepted


class Listener:
    """``--metrics-listen``: the metrics alone, at ``/metrics``, without authentication, in a thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._metrics = metrics
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(host, port, self._app, server_class=server_class, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        logger.info("Metrics on http://%s/metrics (no authentication)", address(*self.address))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path != "/metrics":
            response = Response("Not found: the metrics are at /metrics\n", status=404, content_type="text/plain")
        elif request.method not in ("GET", "HEAD"):
            response = Response("Use GET\n", status=405, headers=[("Allow", "GET, HEAD")], content_type="text/plain")
        else:
            response = self._metrics.view(request)
        return response(environ, start_response)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per connection, at most CONNECTIONS at once (one more is closed unanswered); each
    has READ_TIMEOUT in all, however slowly its client sends. Nothing per request in the log."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(CONNECTIONS)
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        """As WSGIServer's, without its reverse lookup of the address (a host without DNS would wait)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        deadline = threading.Timer(READ_TIMEOUT, _cut, (request,))
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("A metrics request failed", exc_info=True)  # a client gone or too slow: its own business


class _Server6(_Server):
    address_family = socket.AF_INET6


def _cut(connection: socket.socket) -> None:
    """A client still connected when its time is up loses the connection."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Quiet(WSGIRequestHandler):
    """No line per scrape in the application's log; a read that waits READ_TIMEOUT ends the connection."""

    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:
        pass
