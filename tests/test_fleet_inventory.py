"""``acap-http fleet``'s inventory reads back as written, whatever the fleet's directory is called."""

from __future__ import annotations

from pathlib import Path

import yaml
from jinja2 import Environment

from acap_http.servers.fleet import Instance, inventory


def test_the_inventory_reads_back_with_any_directory() -> None:
    base = Path('/srv/it\'s a "fleet"\\: here')
    hosts = yaml.safe_load(inventory([Instance(1, base), Instance(2, base)], python="/venv/bin/python"))["all"]["hosts"]
    assert sorted(hosts) == ["acap1", "acap2"]
    first = hosts["acap1"]
    assert first["acap_http_url"] == "http://127.0.0.2:8080"
    assert first["acap_http_addresses"] == ["127.0.0.2"]
    assert first["acap_http_docker_host"] == "tcp://127.0.0.2:2376"
    assert first["ansible_python_interpreter"] == "/venv/bin/python"
    # The password's lookup is a Jinja expression whose string is the password file's path.
    rendered = Environment().from_string(first["acap_http_password"]).render(lookup=lambda *args: repr(args))
    assert rendered == repr(("ansible.builtin.file", str(Instance(1, base).password_file)))
