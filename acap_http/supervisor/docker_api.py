"""dockerd's API on the application's own unix socket (``Host.control_socket``):
whether dockerd answers ``/_ping``, and stopping its containers as ``docker stop``
would, for the ends that must stop them (the application's stop, a new data-root)."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from acap_http.supervisor import unixhttp
from acap_http.supervisor.runner import Process

logger = logging.getLogger(__name__)

# Short: a probe is repeated every 20 ms until dockerd answers.
PING_TIMEOUT = 0.25
# /info takes dockerd a few ms; longer is a dockerd that hangs, which the page says.
INFO_TIMEOUT = 1.0
# docker stop's own default; each container may set its own (--stop-timeout).
STOP_TIMEOUT = 10


def answers(socket: Path) -> bool:
    try:
        status, body = unixhttp.call(socket, "GET", "/_ping", PING_TIMEOUT)
    except OSError:
        return False
    return status == 200 and body == b"OK"


def watch_ready(answers: Callable[[], bool], process: Process, ready: Callable[[], None]) -> None:
    """Call ``ready`` (from a thread of its own) once dockerd answers; dockerd has no readiness
    signal, so ask every 20 ms while it runs."""

    def watch() -> None:
        while process.alive:
            if answers():
                ready()
                return
            process.wait(0.02)

    threading.Thread(target=watch, name="dockerd-ping", daemon=True).start()


def info(socket: Path) -> dict[str, object] | None:
    """dockerd's ``GET /info`` (containers, data-root, version); None when it does not answer."""
    try:
        answer = unixhttp.call_json(socket, "GET", "/info", INFO_TIMEOUT)
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def stop_containers(socket: Path, deadline: float) -> int:
    """Stop every running container, all at once, each with its own stop signal and timeout
    (SIGKILL after it, as docker stop does); returns how many. Gives up at ``deadline`` seconds."""
    try:
        running = unixhttp.call_json(socket, "GET", "/containers/json", 5.0)
    except (OSError, ValueError) as err:
        logger.warning("Could not list the running containers to stop them: %s", err)
        return 0
    ids = [str(entry["Id"]) for entry in running if isinstance(entry, dict)] if isinstance(running, list) else []
    if not ids:
        return 0
    logger.info("Stopping %d running containers", len(ids))

    def stop(container: str) -> str | None:
        """None once stopped, else why not."""
        try:
            unixhttp.call_json(socket, "POST", f"/containers/{quote(container)}/stop", deadline)
        except (OSError, ValueError) as err:
            return str(err)
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(ids), 16)) as pool:
        for container, failure in zip(ids, pool.map(stop, ids), strict=True):
            if failure is not None:
                logger.warning("Could not stop container %s: %s", container[:12], failure)
    return len(ids)
