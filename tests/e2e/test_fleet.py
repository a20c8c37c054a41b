"""The collection acap_http.dockerdwrapper and its rotation playbook, run by the real Ansible
against three instances of the product on this host (``acap-http fleet``), each with a real
rootless dockerd checked over mutual TLS by community.docker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from ansible_collections.acap_http.dockerdwrapper.plugins.module_utils import vapix

from acap_http.config import CHECKOUT_DIR
from acap_http.servers.fleet import Fleet, Instance
from acap_http.tls.files import TLS_FILES
from tests import pki
from tests.e2e.front import dockerd_pids

PLAYBOOK = CHECKOUT_DIR / "ansible" / "playbooks" / "rotate.yml"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture(scope="module")
def fleet(e2e_root: Path) -> Iterator[Fleet]:
    made = Fleet(e2e_root / "fleet", 3)
    made.start()
    yield made
    made.stop()


def run_playbook(
    fleet: Fleet, playbook: Path, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on the fleet's inventory, as an operator runs it (``env``: Ansible settings more)."""
    merged = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    merged |= {"ANSIBLE_HOME": str(fleet.base / "ansible-home"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    merged |= env or {}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(fleet.inventory_path), str(playbook),
         *extra],
        capture_output=True, text=True, env=merged, timeout=600, check=False,
    )  # fmt: skip


def rotate(fleet: Fleet, *extra: str) -> tuple[int, dict[str, dict[str, int]], str]:
    """Run the playbook; its exit code, the recap per host, and what it printed."""
    done = run_playbook(fleet, PLAYBOOK, "-e", f"rotate_pki_dir={fleet.base / 'pki'}", *extra)
    recap = {
        host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, numbers), strict=True))
        for host, *numbers in RECAP.findall(done.stdout)
    }
    return done.returncode, recap, done.stdout + done.stderr


def _pids(fleet: Fleet) -> dict[str, list[int]]:
    return {each.name: dockerd_pids(each.app_dir) for each in fleet.instances}


def _curl(each: Instance, path: str, *args: str) -> str:
    return subprocess.run(
        ["curl", "-sS", "--anyauth", "-u", f"admin:{each.password_file.read_text().strip()}", *args, each.url + path],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _served(each: Instance) -> str:
    """The fingerprint of the server certificate the instance stores."""
    summary = json.loads(_curl(each, "/local/dockerdwrapper/tls"))
    return str(summary["server-cert.pem"]["certificates"][0]["sha256_fingerprint"])


def _status(each: Instance) -> str:
    listed = _curl(each, "/axis-cgi/param.cgi?action=list&group=root.dockerdwrapper.Status")
    return listed.strip().partition("=")[2]


def _with_a_set(each: Instance, directory: Path) -> None:
    """A TLS set stored and dockerd running on ``each``, whether a rotation ran before or not."""
    if "certificates" not in json.loads(_curl(each, "/local/dockerdwrapper/tls"))["server-cert.pem"]:
        directory.mkdir()
        args = []
        for name, data in pki.Authority().server_set(each.address).by_name().items():
            (directory / name).write_bytes(data)
            args += ["-F", f"{name}=@{directory / name}"]
        _curl(each, "/local/dockerdwrapper/tls", *args, "-X", "POST")
    deadline = time.monotonic() + 60
    while _status(each) != "0 RUNNING":
        assert time.monotonic() < deadline, f"{each.name} did not reach Status 0"
        time.sleep(0.2)


def test_rotation_then_a_rerun_changes_nothing(fleet: Fleet) -> None:
    """The rotation brings every host to Status 0 with docker --tlsverify proved; run again, it reports
    changed=0 everywhere and no dockerd was restarted (the same pids)."""
    code, recap, output = rotate(fleet)
    assert code == 0, output
    assert sorted(recap) == ["acap1", "acap2", "acap3"] and all(h["failed"] == 0 for h in recap.values()), output
    before = _pids(fleet)
    assert all(len(pids) == 1 for pids in before.values()), before
    code, recap, output = rotate(fleet)
    assert code == 0, output
    assert {host: numbers["changed"] for host, numbers in recap.items()} == {"acap1": 0, "acap2": 0, "acap3": 0}
    assert _pids(fleet) == before


def test_a_host_that_does_not_come_back_stops_the_rotation_and_a_rerun_finishes_it(fleet: Fleet) -> None:
    """Batches of one after the canary, acap2's front stopped: the forced rotation renews acap1, fails on
    acap2 (named) in the second batch, and leaves acap3, in the batch after it, untouched. With acap2
    back, a plain re-run picks up there: acap2 and acap3 get the sets the first run issued, acap1
    changes nothing and its dockerd is not restarted."""
    code, _, output = rotate(fleet)
    assert code == 0, output
    first, second, third = fleet.instances
    untouched = (_served(third), dockerd_pids(third.app_dir))
    renewed_from = _served(first)
    fleet.stop_one(second)
    try:
        code, recap, output = rotate(fleet, "-e", "rotate_renew_before=100000", "-e", "rotate_serial=1")
    finally:
        fleet.start_one(second)
    assert code != 0
    assert f"fatal: [{second.name}]" in output and f"cannot reach {second.url}" in output
    assert recap[first.name]["changed"] > 0 and recap[first.name]["failed"] == 0
    assert recap[second.name]["failed"] == 1
    assert third.name not in recap
    assert (_served(third), dockerd_pids(third.app_dir)) == untouched
    assert _served(first) != renewed_from
    first_now = (_served(first), dockerd_pids(first.app_dir))

    code, recap, output = rotate(fleet, "-e", "rotate_serial=1")
    assert code == 0, output
    assert recap[first.name]["changed"] == 0 and (_served(first), dockerd_pids(first.app_dir)) == first_now
    assert recap[second.name]["changed"] > 0 and recap[third.name]["changed"] > 0
    for each in (second, third):
        issued = (fleet.base / "pki" / f"{each.name}-cert.pem").read_bytes()
        assert _served(each) == vapix.certificate_fingerprints(issued)[0]
    assert _served(third) != untouched[0]


APP_PLAYBOOK = """
- name: The script for a camera - stop, change a setting, start, wait
  hosts: all
  gather_facts: false
  module_defaults:
    group/acap_http.dockerdwrapper.all:
      url: "{{ acap_http_url }}"
      password: "{{ acap_http_password }}"
  tasks:
    - acap_http.dockerdwrapper.app: {state: stopped}
    - acap_http.dockerdwrapper.info: {}
      register: stopped
    - acap_http.dockerdwrapper.param: {settings: {DockerdLogLevel: info}}
    - acap_http.dockerdwrapper.app: {state: started}
    # 0 after a rotation; 3 on a host that has no TLS set yet: either way, started again.
    - acap_http.dockerdwrapper.status: {codes: [0, 3], wait_timeout: 120}
      register: running
    - acap_http.dockerdwrapper.app: {state: started}
      register: again
    - acap_http.dockerdwrapper.param: {settings: {DockerdLogLevel: warn}}
    - ansible.builtin.assert:
        that:
          - stopped.application == 'Stopped' and stopped.status.code == -1
          - running.application == 'Running'
          - not again.changed
"""


def test_the_app_module_stops_and_starts_each_host(fleet: Fleet, tmp_path: Path) -> None:
    """Stop (Status -1), a setting, start (Status settled again), on every host through the application
    API; starting a running application again changes nothing."""
    playbook = tmp_path / "app.yml"
    playbook.write_text(APP_PLAYBOOK)
    done = run_playbook(fleet, playbook)
    assert done.returncode == 0, done.stdout + done.stderr
    recap = {host: int(changed) for host, _, changed, *_ in RECAP.findall(done.stdout)}
    assert recap == {"acap1": 4, "acap2": 4, "acap3": 4}, done.stdout
    # One dockerd again where a TLS set is stored (a rotation ran before), none where none is (Status 3),
    # once the restart for the last setting is done.
    for each in fleet.instances:
        has_set = all((each.app_dir / "localdata" / name).exists() for name in TLS_FILES)
        expected = (1, "0 RUNNING") if has_set else (0, "3 TLS CERT MISSING")
        deadline = time.monotonic() + 60
        while (found := (len(dockerd_pids(each.app_dir)), _status(each))) != expected:
            assert time.monotonic() < deadline, (each.name, found)
            time.sleep(0.2)


CHECK_PLAYBOOK = """
- name: Every module in check mode changes nothing; the status module's failure after its timeout
  hosts: acap1
  gather_facts: false
  module_defaults:
    group/acap_http.dockerdwrapper.all:
      url: "{{ acap_http_url }}"
      password: "{{ acap_http_password }}"
  tasks:
    - acap_http.dockerdwrapper.info: {}
      register: before
    - acap_http.dockerdwrapper.app: {state: stopped}
      check_mode: true
      register: would_stop
    - acap_http.dockerdwrapper.param: {settings: {DockerdLogLevel: debug}}
      check_mode: true
      register: would_set
    - acap_http.dockerdwrapper.tls: {ca: "{{ set_dir }}/ca.pem", cert: "{{ set_dir }}/server-cert.pem",
                                     key: "{{ set_dir }}/server-key.pem"}
      check_mode: true
      register: would_send
    - acap_http.dockerdwrapper.status: {codes: [0]}
      check_mode: true
      register: running
    - acap_http.dockerdwrapper.info: {}
      check_mode: true
      register: after
    - acap_http.dockerdwrapper.status: {codes: [6], wait_timeout: 2}
      register: never
      ignore_errors: true
    - ansible.builtin.assert:
        that:
          - would_stop.changed and would_set.changed and would_send.changed
          - would_send.sent | length == 3 and would_send.restart == ''
          - not running.changed and running.status.code == 0
          - after.application == 'Running' and after.status.code == 0
          - after.settings == before.settings and after.tls == before.tls
          - never.failed and never.waited >= 2
          - never.msg is match('Status is 0 RUNNING after [0-9]+ s, not one of .6.')
"""


def test_check_mode_changes_nothing_and_a_status_that_never_comes_fails(fleet: Fleet, tmp_path: Path) -> None:
    """Each module that claims check mode says what it would change and changes nothing (the app runs,
    the settings, the set and dockerd are the same); the status module fails, naming what it saw, once
    its time is up."""
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    for name, data in pki.Authority().server_set().by_name().items():
        (set_dir / name).write_bytes(data)
    first = fleet.instances[0]
    _with_a_set(first, tmp_path / "stored")
    before = (_served(first), dockerd_pids(first.app_dir))
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK_PLAYBOOK)
    done = run_playbook(fleet, playbook, "-e", f"set_dir={set_dir}")
    assert done.returncode == 0, done.stdout + done.stderr
    # Its last look may end past the timeout (2.6 s on a busy machine: "after 3 s").
    assert re.search(r"Status is 0 RUNNING after \d+ s, not one of \[6\]", done.stdout), done.stdout
    assert (_served(first), dockerd_pids(first.app_dir)) == before


def test_every_scrape_target_of_the_inventory_serves_its_hosts_metrics(fleet: Fleet) -> None:
    """file_sd.json names each instance's listener, and each answers there with its own Status (as its
    param.cgi lists it: a Prometheus pointed at the file reads the fleet)."""
    groups = json.loads(fleet.file_sd_path.read_text())
    assert [group["labels"]["host"] for group in groups] == [each.name for each in fleet.instances]
    for group, each in zip(groups, fleet.instances, strict=True):
        (target,) = group["targets"]
        assert target == f"{each.address}:9323"
        deadline = time.monotonic() + 30  # a restart an earlier test asked for may still be settling
        while True:
            listed = _status(each).partition(" ")[0]
            with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            if re.search(rf"^acap_http_status {re.escape(listed)}\.0$", text, re.M):
                break
            assert time.monotonic() < deadline, (each.name, listed, text)
            time.sleep(0.2)
        assert 'acap_http_build_info{app="dockerdwrapper"' in text
