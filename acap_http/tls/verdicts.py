"""Whether dockerd would refuse a set of TLS files (``judging.dockerd_refusal``), kept by content.

A verdict is computed once per content: in this process when it has cryptography
loaded already, else in a short-lived child (``python -m acap_http.tls.verdicts``: the
files as JSON on stdin, the verdict as JSON on stdout), so that judging a stored set
before each start of dockerd does not keep cryptography's memory for good.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)

CHILD_TIMEOUT = 30.0
KEPT = 64  # verdicts kept: the sets in use and those just uploaded; every rotation brings a new one
_verdicts: dict[str, str | None] = {}  # content digest -> refusal, or None when dockerd would take it
_lock = threading.Lock()


class NotJudged(LookupError):
    """No verdict is kept for these files yet: ``refusal`` makes one (it may take a while)."""


def kept(files: Mapping[str, bytes]) -> str | None:
    """The verdict kept for ``files``, made earlier; NotJudged when there is none."""
    with _lock:
        try:
            return _verdicts[_digest(files)]
        except KeyError:
            raise NotJudged from None


def refusal(files: Mapping[str, bytes]) -> str | None:
    """Why dockerd would refuse ``files``, or None."""
    key = _digest(files)
    with _lock:
        if key in _verdicts:
            return _verdicts[key]
    in_process = "cryptography" in sys.modules
    verdict = _here(files) if in_process else _in_child(files)
    with _lock:
        _verdicts[key] = verdict
        while len(_verdicts) > KEPT:
            del _verdicts[next(iter(_verdicts))]  # the oldest
    return verdict


def _digest(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        for part in (name.encode(), files[name]):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _here(files: Mapping[str, bytes]) -> str | None:
    from acap_http.tls import judging  # noqa: PLC0415  (cryptography)

    return judging.dockerd_refusal(files)


def _in_child(files: Mapping[str, bytes]) -> str | None:
    request = json.dumps({name: base64.b64encode(data).decode() for name, data in files.items()})
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-m", __name__], input=request, capture_output=True, text=True,
            timeout=CHILD_TIMEOUT, check=True,
        )  # fmt: skip
        answer = json.loads(done.stdout)
        if answer is None or isinstance(answer, str):
            return answer
        raise ValueError(f"not a verdict: {answer!r}")
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        logger.warning("Judging the TLS files in a child failed (%s); judging them here", err)
        return _here(files)


def main() -> int:
    files = {name: base64.b64decode(text) for name, text in json.load(sys.stdin).items()}
    json.dump(_here(files), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
