"""Every serving mode that waits in its main thread stops the same way: at the first of its stop
signals or of the ends it is told of, said in one line."""

from __future__ import annotations

import logging
import signal
import threading

import pytest

from acap_http.servers.lifecycle import STOP_SIGNALS, Handler, Stop


class FakeSignals:
    """signal.signal's stand-in: keeps the handlers, delivers what a test sends."""

    def __init__(self) -> None:
        self.handlers: dict[signal.Signals, Handler] = {}

    def install(self, signum: signal.Signals, handler: Handler) -> None:
        self.handlers[signum] = handler

    def send(self, signum: signal.Signals) -> None:
        self.handlers[signum](signum, None)


def test_term_int_and_hup_are_each_a_reason_to_stop() -> None:
    signals = FakeSignals()
    stop = Stop(signals.install)
    assert set(signals.handlers) == set(STOP_SIGNALS) == {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    for signum in STOP_SIGNALS:
        signals.send(signum)
    assert [stop.wait() for _ in STOP_SIGNALS] == ["SIGTERM", "SIGINT", "SIGHUP"]


def test_the_first_reason_wins_and_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """A child's end posted before a signal is the reason; the signal waits its turn."""
    signals = FakeSignals()
    stop = Stop(signals.install)
    stop.post("apache2 exited with code 1")
    signals.send(signal.SIGHUP)
    with caplog.at_level(logging.INFO, logger="acap_http.servers.lifecycle"):
        assert stop.wait() == "apache2 exited with code 1"
    assert caplog.messages == ["Stopping (apache2 exited with code 1)"]


def test_wait_blocks_until_a_reason_comes_from_another_thread(caplog: pytest.LogCaptureFixture) -> None:
    stop = Stop(FakeSignals().install)
    threading.Timer(0.05, stop.post, args=("FastCGI server ended",)).start()
    with caplog.at_level(logging.INFO, logger="acap_http.servers.lifecycle"):
        assert stop.wait("Stopping the fleet") == "FastCGI server ended"
    assert caplog.messages == ["Stopping the fleet (FastCGI server ended)"]
