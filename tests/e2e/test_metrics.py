"""The metrics of a real ``up`` (rootless dockerd, real Apache) follow real events: a set uploaded with
curl restarts dockerd and moves the upload counter, the restart counter and the expiry gauge; a
certificate that expires in 6 days shows as such (the alert rules' case); kill -9 of dockerd is a
crash and a crash's restart; a setting is a setting's restart; Status follows. Scraped on the
``--metrics-listen`` listener, and through Apache at /local/dockerdwrapper/metrics as a viewer with
digest; promtool accepts what is served."""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests import pki
from tests.e2e.front import PREFIX, Front, dockerd_pids, free_port
from tests.pages import samples

DAY = 86400.0


class Metered:
    def __init__(self, front: Front, port: int, root: Path) -> None:
        self.front, self.port, self.root = front, port, root
        self.authority = pki.Authority()

    def scrape(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return samples(text)

    def upload_set(self, days: int = 30) -> x509.Certificate:
        """A server set of this CA whose certificate ends in ``days``, as one upload with curl; its certificate."""
        key = pki.rsa_key()
        now = datetime.datetime.now(datetime.UTC)
        valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))
        cert = pki.certificate("server", key, (self.authority.cert, self.authority.key), hosts=("127.0.0.1",),
                               server=True, valid=valid)  # fmt: skip
        files = {"ca.pem": pki.cert_pem(self.authority.cert), "server-cert.pem": pki.cert_pem(cert),
                 "server-key.pem": pki.key_pem(key)}  # fmt: skip
        directory = self.root / f"set-{time.monotonic_ns()}"
        directory.mkdir()
        parts = []
        for name, data in files.items():
            (directory / name).write_bytes(data)
            parts += ["-F", f"{name}=@{directory / name}"]
        assert self.front.curl(*parts, "-X", "POST", path=PREFIX + "tls").status == 204
        return cert

    def until(self, name: str, value: float, timeout: float = 30) -> dict[str, float]:
        """Scrapes until ``name`` reads ``value`` (the counters move once dockerd answers); the last scrape."""
        deadline = time.monotonic() + timeout
        while (seen := self.scrape()).get(name) != value:
            assert time.monotonic() < deadline, f"{name} is {seen.get(name)}, not {value}"
            time.sleep(0.1)
        return seen


@pytest.fixture(scope="module")
def metered(e2e_root: Path) -> Iterator[Metered]:
    root = e2e_root / "metrics"
    root.mkdir(mode=0o755)
    port = free_port()
    front = Front(app_dir=root / "app", log_path=root / "up.log", extra_args=("--metrics-listen", f"{port}"))
    front.start()
    yield Metered(front, port, root)
    assert front.stop() == 0, front.app_log()


def test_metrics_follow_uploads_crashes_and_settings(metered: Metered) -> None:
    front = metered.front
    front.wait_status("3 TLS CERT MISSING")
    seen = metered.scrape()
    assert seen["acap_http_status"] == 3 and seen["acap_http_application_running"] == 1
    assert "acap_http_tls_set_accepted" not in seen and not any("expiry" in name for name in seen)
    assert seen['acap_http_dockerd_restarts_total{cause="upload"}'] == 0

    # The first set: dockerd starts, as an upload's restart.
    mark = front.mark()
    first = metered.upload_set(days=90)
    front.wait_status("0 RUNNING", since=mark)
    seen = metered.until('acap_http_dockerd_restarts_total{cause="upload"}', 1)
    assert seen["acap_http_status"] == 0 and seen["acap_http_tls_set_accepted"] == 1
    assert seen['acap_http_tls_uploads_total{file="set",result="stored"}'] == 1
    assert seen['acap_http_dockerd_restart_duration_seconds_count{cause="upload"}'] == 1
    left = (first.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).total_seconds()
    assert abs(seen['acap_http_tls_cert_expiry_seconds{file="server"}'] - left) < 60
    metered.until("acap_http_containers_running", 0)

    # A rotation to a certificate that ends in 6 days: a second restart, and the gauge the alert reads.
    mark = front.mark()
    metered.upload_set(days=6)
    front.wait_status("0 RUNNING", since=mark)
    seen = metered.until('acap_http_dockerd_restarts_total{cause="upload"}', 2)
    assert 5.9 * DAY < seen['acap_http_tls_cert_expiry_seconds{file="server"}'] < 6 * DAY
    assert seen['acap_http_dockerd_restarts_total{cause="crash"}'] == 0 and seen["acap_http_dockerd_crashes_total"] == 0

    # kill -9 of dockerd: a crash, Status 1, then a crash's restart and Status 0.
    (pid,) = dockerd_pids(front.app_dir)
    mark = front.mark()
    os.kill(pid, signal.SIGKILL)
    front.wait_status("0 RUNNING", since=mark)
    assert "Status=1 DOCKERD STOPPED" in front.log()[mark:]
    seen = metered.until('acap_http_dockerd_restarts_total{cause="crash"}', 1)
    assert seen["acap_http_dockerd_crashes_total"] == 1 and seen["acap_http_status"] == 0

    # A setting through param.cgi: a setting's restart, and an update counted ok; a bad value refused.
    mark = front.restart_dockerd()
    front.wait_status("0 RUNNING", since=mark)
    seen = metered.until('acap_http_dockerd_restarts_total{cause="setting"}', 1)
    assert seen['acap_http_param_updates_total{result="ok"}'] == 1
    bad = front.curl(path="/axis-cgi/param.cgi?action=update&root.dockerdwrapper.DockerdLogLevel=shout")
    assert bad.body.startswith("# Error")
    assert metered.scrape()['acap_http_param_updates_total{result="refused"}'] == 1
    assert metered.scrape()['acap_http_dockerd_restarts_total{cause="upload"}'] == 2


def test_apache_serves_them_to_viewers_and_promtool_accepts_them(metered: Metered) -> None:
    front = metered.front
    assert front.curl(path=PREFIX + "metrics", user=None).status == 401
    answer = front.curl(path=PREFIX + "metrics", user="viewer")
    assert answer.status == 200 and "text/plain; version=0.0.4" in answer.headers
    checked = subprocess.run(["promtool", "check", "metrics"], input=answer.body, capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    opened = front.curl("-H", "Accept: application/openmetrics-text; version=1.0.0", path=PREFIX + "metrics",
                        user="viewer")  # fmt: skip
    assert "application/openmetrics-text" in opened.headers and opened.body.endswith("# EOF\n")
    # The listener answers on loopback alone.
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{metered.port}"], capture_output=True, text=True,
                               check=True).stdout  # fmt: skip
    assert re.findall(r"\s(\S+):\d+\s", listening) == ["127.0.0.1"], listening
