"""The metrics: what each counter counts through the real endpoints, what is read at each scrape,
both formats (checked by Debian's promtool), the listener of --metrics-listen, serve's /metrics, and
the alert rules and dashboard shipped in monitoring/ (promtool's own checks and unit tests)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import generate_latest
from werkzeug.test import Client

from acap_http import config, manifest, metrics
from acap_http.app import AcapApp, Endpoints
from acap_http.cli import _metrics_listen
from acap_http.handlers.param_api import ParamApi
from acap_http.handlers.param_cgi import ParamCgi
from acap_http.handlers.param_tree import ParamTree
from acap_http.handlers.tls_files import TlsEndpoints
from acap_http.manifest import ACCESS_ENV
from acap_http.metrics import Listener, Metrics, Readings
from acap_http.options import Options
from acap_http.params import ParamStore
from acap_http.servers.fleet import Instance, file_sd
from acap_http.servers.local_front import run_arguments
from acap_http.supervisor.events import Cause
from acap_http.tls.store import TlsStore
from tests import multipart, pki
from tests.pages import NO_DOCKERD, samples

SHIPPED = manifest.load(config.CHECKOUT_DIR / "manifest" / "manifest.json")
# The shipped manifest's entries these tests serve: the TLS files', and the metrics.
SERVED = {"ca.pem", "server-cert.pem", "server-key.pem", "tls", "metrics"}
LOADED = dataclasses.replace(
    SHIPPED, endpoints=tuple(each for each in SHIPPED.endpoints if each.name in SERVED), setting_page=""
)
PREFIX = "/local/dockerdwrapper/"
MONITORING = config.CHECKOUT_DIR / "monitoring"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


class Harness:
    """The real endpoints, counted by one Metrics, over a test's store and parameters."""

    def __init__(self, root: Path) -> None:
        self.params = ParamStore.from_manifest(LOADED, root)
        self.tls = TlsStore(root / "localdata")
        self.tls.directory.mkdir(parents=True)
        self.running = True
        self.dockerd: dict[str, object] = dict(NO_DOCKERD)
        readings = Readings(lambda: self.params.get("Status"), lambda: self.running, self.tls.summary,
                            lambda: self.dockerd)  # fmt: skip
        self.metrics = Metrics(readings, LOADED.app_name, LOADED.version)
        tree = ParamTree(self.params, LOADED.app_name, {})
        endpoints = Endpoints(
            tls_files=TlsEndpoints(self.tls, lambda why: None, tls_in_use=lambda: True, record=self.metrics.uploaded),
            param_cgi=ParamCgi(tree, record=self.metrics.param_updated),
            param_api=ParamApi(tree, self.metrics.param_updated),
            metrics=self.metrics.view,
        )
        self.client = Client(AcapApp(LOADED, endpoints))

    def post(self, name: str, **files: bytes) -> int:
        body = multipart.body(*(multipart.part(field, data, field) for field, data in files.items()))
        path = PREFIX + name
        admin = {"REQUEST_URI": path, "REMOTE_USER": "admin", ACCESS_ENV: "admin"}
        answer = self.client.post(path, data=body, content_type=multipart.content_type(), environ_base=admin)
        return answer.status_code

    def scrape(self, accept: str = "") -> tuple[str, str]:
        path = PREFIX + "metrics"
        viewer = {"REQUEST_URI": path, "REMOTE_USER": "viewer", ACCESS_ENV: "viewer"}
        answer = self.client.get(path, headers={"Accept": accept} if accept else {}, environ_base=viewer)
        assert answer.status_code == 200
        return answer.get_data(as_text=True), answer.headers["Content-Type"]

    def samples(self) -> dict[str, float]:
        return samples(self.scrape()[0])


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_uploads_are_counted_by_file_and_result(harness: Harness) -> None:
    files = pki.server_set().by_name()
    assert harness.post("tls", **files) == 204
    assert harness.post("tls", **files) == 204  # the same again: unchanged
    assert harness.post("ca.pem", file=files["server-key.pem"]) == 400  # a key in the CA's slot
    assert harness.post("server-cert.pem", file=pki.server_set().server_cert) == 204
    assert harness.post("tls", **{"ca.pem": files["ca.pem"]}) == 400  # not a set
    seen = harness.samples()
    assert seen['acap_http_tls_uploads_total{file="set",result="stored"}'] == 1
    assert seen['acap_http_tls_uploads_total{file="set",result="unchanged"}'] == 1
    assert seen['acap_http_tls_uploads_total{file="set",result="refused"}'] == 1
    assert seen['acap_http_tls_uploads_total{file="ca.pem",result="refused"}'] == 1
    assert seen['acap_http_tls_uploads_total{file="server-cert.pem",result="stored"}'] == 1
    assert seen['acap_http_tls_uploads_total{file="server-key.pem",result="stored"}'] == 0


def test_parameter_updates_are_counted_by_result_through_both_apis(harness: Harness) -> None:
    level = {"REMOTE_USER": "admin", ACCESS_ENV: "admin"}
    cgi = "/axis-cgi/param.cgi"
    for query in ("action=update&root.dockerdwrapper.DockerdLogLevel=info",
                  "action=update&root.dockerdwrapper.DockerdLogLevel=shout",
                  "action=update&root.dockerdwrapper.NoSuch=1"):  # fmt: skip
        harness.client.get(f"{cgi}?{query}", environ_base={**level, "REQUEST_URI": f"{cgi}?{query}"})
    api = "/config/rest/param/v2beta/dockerdwrapper"
    for body in ({"data": {"UseTLS": "no"}}, {"data": {"UseTLS": "maybe"}}):
        harness.client.patch(api, json=body, environ_base={**level, "REQUEST_URI": api})
    seen = harness.samples()
    assert seen['acap_http_param_updates_total{result="ok"}'] == 2
    assert seen['acap_http_param_updates_total{result="refused"}'] == 3
    assert seen['acap_http_param_updates_total{result="failed"}'] == 0
    assert harness.params.get("DockerdLogLevel") == "info" and harness.params.get("UseTLS") == "no"


def test_each_scrape_reads_status_certificates_verdict_and_containers(harness: Harness) -> None:
    seen = harness.samples()
    assert seen["acap_http_status"] == -1 and seen["acap_http_application_running"] == 1
    assert not any(name.startswith(("acap_http_tls_cert_expiry", "acap_http_tls_set_accepted",
                                    "acap_http_containers_running")) for name in seen)  # fmt: skip
    authority = pki.Authority()
    files = authority.server_set().by_name()
    assert harness.post("tls", **files) == 204
    harness.params.update({"Status": "0 RUNNING"}, by_program=True)
    harness.dockerd = {**NO_DOCKERD, "answers": True, "containers_running": 3}
    seen = harness.samples()
    ends = {label: x509.load_pem_x509_certificate(files[name]).not_valid_after_utc for label, name in
            (("ca", "ca.pem"), ("server", "server-cert.pem"))}  # fmt: skip
    for label, end in ends.items():
        left = (end - datetime.datetime.now(datetime.UTC)).total_seconds()
        assert abs(seen[f'acap_http_tls_cert_expiry_seconds{{file="{label}"}}'] - left) < 5
    assert seen["acap_http_status"] == 0 and seen["acap_http_tls_set_accepted"] == 1
    assert seen["acap_http_containers_running"] == 3
    # A key that is not the certificate's: dockerd would refuse the set.
    assert harness.post("server-key.pem", file=pki.key_pem(pki.rsa_key())) == 204
    assert harness.samples()["acap_http_tls_set_accepted"] == 0
    harness.running = False
    assert harness.samples()["acap_http_application_running"] == 0


def test_a_part_that_cannot_be_read_takes_neither_the_others_nor_the_scrape(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing() -> dict[str, object]:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(harness.tls, "summary", failing)
    harness.metrics = Metrics(
        Readings(lambda: "2 DOCKERD RUNTIME ERROR", lambda: True, harness.tls.summary, lambda: harness.dockerd),
        LOADED.app_name, LOADED.version,
    )  # fmt: skip
    text = generate_latest(harness.metrics.registry).decode()
    assert "acap_http_status 2.0" in text and "acap_http_containers_running" in text
    assert "acap_http_tls_cert_expiry_seconds" not in text
    assert "The metrics could not read the TLS files: [Errno 5] Input/output error" in caplog.text


def test_the_supervisors_counts_and_the_build(harness: Harness) -> None:
    metrics = harness.metrics
    metrics.restarted(Cause.UPLOAD, 0.7)
    metrics.restarted(Cause.CRASH, 3.0)
    metrics.crashed()
    metrics.reloaded(Cause.SETTING)
    metrics.started(1_700_000_000)
    seen = harness.samples()
    assert seen['acap_http_dockerd_restarts_total{cause="upload"}'] == 1
    assert seen['acap_http_dockerd_restarts_total{cause="card"}'] == 0
    assert seen['acap_http_dockerd_restart_duration_seconds_bucket{cause="upload",le="1.0"}'] == 1
    assert seen['acap_http_dockerd_restart_duration_seconds_bucket{cause="crash",le="2.5"}'] == 0
    assert seen['acap_http_dockerd_restart_duration_seconds_sum{cause="crash"}'] == 3.0
    assert seen["acap_http_dockerd_crashes_total"] == 1
    assert seen['acap_http_dockerd_reloads_total{cause="setting"}'] == 1
    assert seen["acap_http_start_time_seconds"] == 1_700_000_000
    assert seen[f'acap_http_build_info{{app="dockerdwrapper",version="{LOADED.version}"}}'] == 1


def test_both_formats_pass_promtool(harness: Harness, tmp_path: Path) -> None:
    """Prometheus' text format unless OpenMetrics is asked for; promtool accepts what is served."""
    assert harness.post("tls", **pki.server_set().by_name()) == 204
    text, kind = harness.scrape()
    assert kind.startswith("text/plain; version=0.0.4")
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""  # no lint finding either
    opened, kind = harness.scrape("application/openmetrics-text; version=1.0.0")
    assert kind.startswith("application/openmetrics-text") and opened.endswith("# EOF\n")
    assert "acap_http_dockerd_crashes_total 0.0" in opened


def test_the_listener_serves_the_metrics_alone(harness: Harness) -> None:
    listener = Listener(harness.metrics, "127.0.0.1", 0)
    listener.start()
    try:
        host, port = listener.address
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200 and b"acap_http_status -1.0" in answer.read()
        for path, method, code in (("/", "GET", 404), ("/metrics/../x", "GET", 404), ("/metrics", "POST", 405)):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method), timeout=5
                )
            refused.value.close()
            assert refused.value.code == code
    finally:
        listener.stop()


def test_the_listener_serves_few_connections_at_once_and_none_for_long(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle connections take at most CONNECTIONS handlers (the rest are closed unanswered); a client that
    drips a byte at a time loses its connection when its time is up; then a scrape is answered again."""
    monkeypatch.setattr(metrics, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(metrics._Quiet, "timeout", 0.5)
    listener = Listener(harness.metrics, "127.0.0.1", 0)
    listener.start()
    port = listener.address[1]
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    try:
        time.sleep(0.2)
        assert threading.active_count() - before <= 2 * metrics.CONNECTIONS  # a handler and its deadline each
        for each in idle:
            each.close()
        time.sleep(0.7)  # the idle ones' threads end with their time
        with socket.create_connection(("127.0.0.1", port)) as drip:
            began = time.monotonic()
            with contextlib.suppress(OSError):
                for byte in b"GET /metrics HTTP/1.1\r\n":
                    drip.sendall(bytes([byte]))
                    time.sleep(0.1)
            drip.settimeout(2)
            assert drip.recv(100) == b""  # cut, unanswered
            assert time.monotonic() - began < 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
    finally:
        for each in idle:
            each.close()
        listener.stop()


def test_metrics_listen_takes_a_port_alone_as_loopback_and_up_hands_it_on(tmp_path: Path) -> None:
    assert _metrics_listen("9323") == ("127.0.0.1", 9323)
    assert _metrics_listen("0.0.0.0:9400") == ("0.0.0.0", 9400)
    assert _metrics_listen("[::1]:9323") == ("::1", 9323)
    options = Options(app_dir=tmp_path, metrics_listen=("::1", 9323))
    assert "--metrics-listen=[::1]:9323" in run_arguments(options, "dockerdwrapper")
    assert not any(arg.startswith("--metrics-listen") for arg in run_arguments(Options(app_dir=tmp_path), "x"))


def test_the_fleets_scrape_targets(tmp_path: Path) -> None:
    groups = json.loads(file_sd([Instance(1, tmp_path), Instance(2, tmp_path)]))
    assert groups == [{"targets": ["127.0.0.2:9323"], "labels": {"host": "acap1"}},
                      {"targets": ["127.0.0.3:9323"], "labels": {"host": "acap2"}}]  # fmt: skip
    assert "--metrics-listen" in Instance(1, tmp_path).command(None)


def test_the_alert_rules_pass_promtools_checks_and_unit_tests() -> None:
    for command in (["check", "rules", "acap-http.rules.yml"], ["test", "rules", "acap-http.rules.test.yml"],
                    ["check", "config", "prometheus.yml"]):  # fmt: skip
        done = subprocess.run([PROMTOOL, *command], cwd=MONITORING, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    tested = (MONITORING / "acap-http.rules.test.yml").read_text()
    rules = re.findall(r"- alert: (\w+)", (MONITORING / "acap-http.rules.yml").read_text())
    assert len(rules) == 6
    for alert in rules:  # each alert is tested firing
        assert re.search(rf"alertname: {alert}\n\s+exp_alerts:\n\s+- exp_labels", tested), alert


def test_the_rules_and_the_dashboard_ask_only_for_metrics_that_exist(harness: Harness) -> None:
    served = {name.partition("{")[0] for name in samples(harness.scrape()[0])}
    served |= {"acap_http_tls_cert_expiry_seconds", "acap_http_tls_set_accepted", "acap_http_containers_running"}
    dashboard = json.loads((MONITORING / "grafana-fleet.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries.append((MONITORING / "acap-http.rules.yml").read_text())
    asked = {name for query in queries for name in re.findall(r"\bacap_http_[a-z_]+", query)}
    assert asked and asked <= served, asked - served
