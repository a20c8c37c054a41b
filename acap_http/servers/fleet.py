"""``acap-http fleet``: several independent products on one host, for tests, demos and the
fleet benchmark, with an Ansible inventory of them.

Instance K (1 … N) is an ``acap-http up`` of its own: its app directory, its app user
(rootless dockerd each), its front on 127.0.0.(K+1):8080, its dockerd on
127.0.0.(K+1):2376 and its metrics on 127.0.0.(K+1):9323. The inventory gives each the
variables the collection ``acap_http.dockerdwrapper`` reads: the front's URL and admin
credentials (a file lookup of the generated password), the docker endpoint and the
addresses for the SANs; ``file_sd.json`` beside it lists the metrics' scrape targets for
Prometheus' ``file_sd_configs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acap_http.config import AppPaths
from acap_http.errors import SetupError
from acap_http.servers.children import Child, file_says
from acap_http.servers.lifecycle import Stop
from acap_http.servers.users import USERS

FRONT_PORT = 8080
DOCKER_PORT = 2376
METRICS_PORT = 9323  # dockerd's own metrics-addr port, as the product's
BANNER_END = "Press Ctrl-C to stop."


@dataclass(frozen=True)
class Instance:
    number: int
    base: Path

    @property
    def name(self) -> str:
        return f"acap{self.number}"

    @property
    def address(self) -> str:
        return f"127.0.0.{self.number + 1}"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{FRONT_PORT}"

    @property
    def metrics_target(self) -> str:
        return f"{self.address}:{METRICS_PORT}"

    @property
    def app_dir(self) -> Path:
        return self.base / self.name

    @property
    def user(self) -> str:
        return f"acap-fleet{self.number}"

    @property
    def log(self) -> Path:
        return self.base / f"{self.name}.log"

    @property
    def password_file(self) -> Path:
        return AppPaths(self.app_dir).front / f"{USERS[0][0]}.password"

    def command(self, manifest: Path | None) -> list[str]:
        argv = [sys.executable, "-m", "acap_http", "up", "--listen", f"{self.address}:{FRONT_PORT}"]
        argv += ["--app-dir", str(self.app_dir), "--docker-address", self.address, "--app-user", self.user]
        argv += ["--metrics-listen", self.metrics_target]
        return argv + (["--manifest", str(manifest)] if manifest else [])


def inventory(instances: list[Instance], python: str = sys.executable) -> str:
    """The fleet's Ansible inventory: YAML, written as JSON (which YAML reads as it is) by a serializer,
    so that any path or address is quoted as the parser reads it."""
    hosts = {
        each.name: {
            "ansible_connection": "local",
            "ansible_python_interpreter": python,
            "acap_http_url": each.url,
            "acap_http_user": "admin",
            # A Jinja string literal: JSON's quoting is one Jinja reads alike.
            "acap_http_password": f"{{{{ lookup('ansible.builtin.file', {json.dumps(str(each.password_file))}) }}}}",
            "acap_http_docker_host": f"tcp://{each.address}:{DOCKER_PORT}",
            "acap_http_addresses": [each.address],
            "acap_http_metrics_target": each.metrics_target,
        }
        for each in instances
    }
    document = json.dumps({"all": {"hosts": hosts}}, indent=2)
    return f"# Written by acap-http fleet; rewritten at every start.\n{document}\n"


def file_sd(instances: list[Instance]) -> str:
    """The instances' metrics as Prometheus' file service discovery reads them: a target each, named."""
    groups = [{"targets": [each.metrics_target], "labels": {"host": each.name}} for each in instances]
    return json.dumps(groups, indent=2) + "\n"


class Fleet:
    """N instances of ``acap-http up``, started and stopped together."""

    def __init__(self, base: Path, count: int, manifest: Path | None = None) -> None:
        self.base = base
        self.instances = [Instance(number, base) for number in range(1, count + 1)]
        self._manifest = manifest
        self._children: dict[str, Child] = {}

    @property
    def inventory_path(self) -> Path:
        return self.base / "inventory.yml"

    @property
    def file_sd_path(self) -> Path:
        return self.base / "file_sd.json"

    def start(self, timeout: float = 60) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)  # the app users pass through to their directories
        waits = [self._spawn(each) for each in self.instances]
        for wait in waits:
            wait(timeout)
        self.inventory_path.write_text(inventory(self.instances))
        self.file_sd_path.write_text(file_sd(self.instances))

    def start_one(self, each: Instance, timeout: float = 60) -> None:
        """(Re)start one instance, after ``stop_one``."""
        self._spawn(each)(timeout)

    def stop_one(self, each: Instance) -> None:
        self._children[each.name].stop(60)

    def _spawn(self, each: Instance) -> Callable[[float], None]:
        """Start ``each``; what waits until it is up."""
        env = {name: value for name, value in os.environ.items() if name not in {v for _, _, v in USERS}}
        offset = each.log.stat().st_size if each.log.exists() else 0
        child = Child(each.name, each.command(self._manifest), env=env, log=each.log)
        child.spawn()
        self._children[each.name] = child
        ready = file_says(each.log, BANNER_END, offset)
        return lambda timeout: child.wait_ready(ready, timeout, f"up (see {each.log})")

    def stop(self) -> None:
        for child in self._children.values():
            child.terminate()
        for child in self._children.values():
            child.stop(60)


def run(base: Path, count: int) -> int:
    """``acap-http fleet``: start, tell the operator what to run, stop everything on a signal."""
    if os.geteuid() != 0:
        raise SetupError("acap-http fleet starts one app user per instance: run it as root")
    if not 1 <= count <= 250:
        raise SetupError("--count must be between 1 and 250 (one loopback address each)")
    stop = Stop()
    fleet = Fleet(base, count)
    try:
        fleet.start()
        lines = ["", f"acap-http fleet: {count} instances, logs and app directories in {base}"]
        lines += [f"  {each.name}: {each.url}/  docker tcp://{each.address}:{DOCKER_PORT}  "
                  f"metrics http://{each.metrics_target}/metrics" for each in fleet.instances]  # fmt: skip
        lines += [
            f"  inventory: {fleet.inventory_path}",
            f"  Prometheus' scrape targets (file_sd): {fleet.file_sd_path} (monitoring/prometheus.yml reads it)",
            "  rotate their TLS sets (another shell):",
            "    make rotate",
            f"    (or: .venv/bin/ansible-playbook -i {fleet.inventory_path} -f 5 ansible/playbooks/rotate.yml)",
            "Press Ctrl-C to stop them all.",
            "",
        ]
        print("\n".join(lines), flush=True)
        stop.wait("Stopping the fleet")
    finally:
        with contextlib.suppress(Exception):
            fleet.stop()
    return 0
