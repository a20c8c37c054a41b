"""The bare restart the product is compared with: dockerd alone, in the same layout (the
product's own holder, containerd and command line, but no supervisor, no HTTP), stopped
and started again on request.

Run by ``bench/restart.py`` as the user dockerd runs as. A line-driven child: it brings the
stack and dockerd up, prints ``ready``, then for each ``restart`` line on its input stops
dockerd (SIGTERM, wait for its exit), prints the seconds that took, and starts it again; the
parent times the whole from its side, to the first answer its client gets. At end of input
it stops everything.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from acap_http.supervisor import docker_api
from acap_http.supervisor.command import Host, runtime_dir_of
from acap_http.supervisor.housekeeping import prepare
from acap_http.supervisor.runner import Exit, Process, Runner
from acap_http.supervisor.settings import Settings
from acap_http.supervisor.stack import Stack

SETTINGS = Settings(use_tls=True, tcp_socket=True, ipc_socket=False, dockerd_log_level="warn", sd_card=False)


def _ignore(process: Process, exit: Exit) -> None:
    pass


def main() -> int:
    app_dir = Path(sys.argv[1])
    uid = os.geteuid()
    host = Host(
        rootless=uid != 0,
        app_dir=app_dir,
        runtime_dir=runtime_dir_of(uid),
        address="127.0.0.1",
        path=os.environ.get("PATH", ""),
        uid=uid,
        gid=os.getegid(),
    )
    data_root = host.localdata / "data"
    prepare(host, data_root)
    runner = Runner()
    stack = Stack(host, runner, _ignore)
    never = threading.Event()  # nothing cancels a bench's start
    stack.up(data_root, never)
    stack.before_dockerd(SETTINGS, never)
    dockerd = start(runner, stack, host)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "restart":
            continue
        began = time.monotonic()
        dockerd.stop()
        print(f"{time.monotonic() - began:.6f}", flush=True)
        prepare(host, data_root)  # what the product does before each start too
        stack.before_dockerd(SETTINGS, never)
        dockerd = runner.start(stack.dockerd_command(SETTINGS), _ignore, name="dockerd")
    dockerd.stop()
    for process in stack.processes:
        process.stop()
    return 0


def start(runner: Runner, stack: Stack, host: Host) -> Process:
    process = runner.start(stack.dockerd_command(SETTINGS), _ignore, name="dockerd")
    while not docker_api.answers(host.control_socket):
        if not process.alive:
            raise SystemExit(f"dockerd exited: {process.exit}")
        time.sleep(0.005)
    return process


if __name__ == "__main__":
    raise SystemExit(main())
