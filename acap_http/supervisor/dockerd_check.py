"""Whether dockerd would start with a daemon.json, asked of dockerd itself before the document
replaces the stored one: the product's command line (its flags, the current settings), with the
candidate as the config file and scratch paths for everything dockerd would touch.

Docker 23 and later check and stop: ``dockerd --validate``. Docker 20.10 (Debian 12) has no such
flag, but it reads and checks its whole configuration before it looks at its pid file: it is
given a pid file naming a live process (pid 1 of a PID namespace of its own, which is always
there), and stops there, having read everything, with ``pid file found``. It runs in a user
namespace where it is root (``unshare --map-root-user``), as rootless dockerd believes it is.
Either way nothing listens, no network is touched, and the scratch directory goes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from acap_http.escape import printable
from acap_http.supervisor import command, daemon_json, versions
from acap_http.supervisor.command import Host
from acap_http.supervisor.settings import Settings

logger = logging.getLogger(__name__)

TIMEOUT = 20.0
VALIDATE_FLAG: versions.Version = (23,)  # dockerd --validate arrived in Docker 23
# What Docker 20.10 says when it has read its configuration and stops at the pid file.
STOPPED_AT_PID_FILE = ("pid file found", "is still running")
UNSHARE = ("unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc")


def refusal(candidate: bytes, settings: Settings, host: Host) -> str | None:
    """Why dockerd would not start with ``candidate`` as its daemon.json (dockerd's own words, one
    line), or None."""
    document = json.loads(candidate)
    version = versions.of("dockerd", host.path)
    host.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="daemon-json-check-", dir=host.runtime_dir))
    try:
        config = scratch / "candidate.json"
        config.write_bytes(candidate)
        given = daemon_json.effective(config, scratch, lambda: version)
        trial = dataclasses.replace(host, runtime_dir=scratch)
        built = command.dockerd(
            settings, trial, scratch / "data", 0, daemon_json_sets=frozenset(document),
            config_file=given.config_file, extra_env=given.env,
        )  # fmt: skip
        argv = list(built.argv[built.argv.index("--") + 1 :])
        validates = version == versions.UNKNOWN or version >= VALIDATE_FLAG
        if validates:
            argv.insert(1, "--validate")
        else:
            trial.pid_file.write_text("1\n")
            argv = [*UNSHARE, *argv]
        try:
            done = subprocess.run(argv, env=dict(built.env), capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            return f"dockerd did not finish checking the document in {TIMEOUT:.0f} s"
        except OSError as err:
            return f"dockerd could not be run to check the document: {err}"
        said = done.stderr + done.stdout
        if (done.returncode == 0) if validates else any(words in said for words in STOPPED_AT_PID_FILE):
            return None
        return _reason(said, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _reason(said: str, scratch: Path) -> str:
    """dockerd's last error line, its scratch paths named as the operator knows them."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    errors = [line for line in lines if "level=warn" not in line and "level=info" not in line] or lines
    reason = errors[-1] if errors else "dockerd refused it and said nothing"
    for path in sorted({str(scratch / "candidate.json"), str(scratch / daemon_json.DERIVED_NAME)}, key=len,
                       reverse=True):  # fmt: skip
        reason = reason.replace(path, "daemon.json")
    return printable(reason.replace(str(scratch), "<scratch>"))
