"""The settings page's endpoints, and the metrics, for the in-process apps of the unit tests: the real page and
state, over the test's parameters and TLS store, with no dockerd and no log behind them."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from acap_http.handlers.page import PageEndpoints
from acap_http.manifest import Manifest
from acap_http.metrics import Metrics, Readings
from acap_http.overview import Event, Overview, Sources
from acap_http.params import ParamStore
from acap_http.tls.store import TlsStore

NO_DOCKERD: dict[str, object] = {
    "mode": "rootless", "user": "acap-dockerdwrapper", "version": "26.1.5", "answers": False,
    "containers_running": None, "containers": None, "images": None, "data_root": None, "command": None,
}  # fmt: skip


def page(
    loaded: Manifest,
    params: ParamStore,
    tls: TlsStore,
    *,
    dockerd: dict[str, object] | None = None,
    log: list[str] | None = None,
    last_restart: Event | None = None,
    running: Callable[[], bool] = lambda: True,
) -> PageEndpoints:
    started = time.time()
    sources = Sources(
        loaded, params, tls, running=running, status_since=lambda: started,
        last_restart=lambda: last_restart, dockerd=lambda: dockerd or NO_DOCKERD, log=lambda: log or [],
    )  # fmt: skip
    return PageEndpoints(loaded, Overview(sources))


def metrics(
    loaded: Manifest, params: ParamStore, tls: TlsStore, *, running: Callable[[], bool] = lambda: True
) -> Metrics:
    """The application's metrics over the test's parameters and TLS store, with no dockerd behind them."""
    readings = Readings(lambda: params.get("Status"), running, tls.summary, lambda: NO_DOCKERD)
    return Metrics(readings, loaded.app_name, loaded.version)


def samples(exposition: str) -> dict[str, float]:
    """Every sample of a scrape by prometheus_client's own parser, keyed as the exposition writes it:
    ``name{label="value",…}``."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = ",".join(f'{name}="{value}"' for name, value in sample.labels.items())
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found
