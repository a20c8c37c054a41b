"""The TLS files of one directory as a service: validated on the way in,
written only when they change (one file, or the three as one set, crash-safe),
removed, read back, judged and summarised. The HTTP handlers and
``acap-http certs`` use it; nothing else touches the files.

Reading X.509 loads cryptography, which maps its own OpenSSL (about 13 MiB that a
process keeps for good). So it is loaded on the first upload or summary, and not
to judge a stored set before dockerd starts: that verdict is kept by content, and a
process that has not loaded cryptography yet asks a short-lived child (``verdicts``).
A camera that boots with its files stored never loads it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from pathlib import Path

from acap_http.errors import InvalidPem
from acap_http.filestore import FileStore, Step
from acap_http.tls import verdicts
from acap_http.tls.files import TLS_FILES, TlsFile

logger = logging.getLogger(__name__)


class Change(enum.Enum):
    STORED = "stored"
    UNCHANGED = "unchanged"  # the same content was there already: nothing written


class UnknownTlsFile(KeyError):
    """A name that is none of the TLS files."""


class TlsStore:
    def __init__(self, directory: Path, step: Step = lambda name: None) -> None:
        self.files = FileStore(directory, step=step)

    @property
    def directory(self) -> Path:
        return self.files.directory

    @staticmethod
    def spec(name: str) -> TlsFile:
        try:
            return TLS_FILES[name]
        except KeyError:
            raise UnknownTlsFile(name) from None

    def validate(self, name: str, data: bytes) -> bytes:
        """The bytes to store for ``name``, or InvalidPem with the original sentence and the reason."""
        from acap_http.tls import uploads  # noqa: PLC0415  (cryptography: see the module's note)

        spec = self.spec(name)
        try:
            return uploads.validate(spec, data)
        except InvalidPem as err:
            raise InvalidPem(f"{spec.invalid_sentence} {err}") from None

    def put(self, name: str, data: bytes) -> Change:
        """Validate and store one file; OSError if it cannot be written."""
        return self.put_set({name: data})

    def put_set(self, files: Mapping[str, bytes]) -> Change:
        """Validate every file, then store those that differ as one; all or nothing."""
        validated = {name: (self.validate(name, data), self.spec(name).mode) for name, data in files.items()}
        changed = self.files.update(validated)
        if changed:
            logger.info("Stored %s", ", ".join(f"{name} ({len(validated[name][0])} bytes)" for name in changed))
            return Change.STORED
        logger.info("%s: the same as stored; nothing written", ", ".join(files))
        return Change.UNCHANGED

    def remove(self, name: str) -> None:
        """FileNotFoundError when ``name`` is not stored."""
        self.spec(name)
        self.files.remove(name)
        logger.info("Removed %s", name)

    def read(self) -> dict[str, bytes | None]:
        """Each TLS file's bytes, None for those not stored."""
        return {name: self.files.read_if_present(name) for name in TLS_FILES}

    def missing(self) -> list[str]:
        return [name for name in TLS_FILES if not self.files.exists(name)]

    def refusal(self, files: Mapping[str, bytes | None] | None = None, *, judge: bool = True) -> str | None:
        """Why dockerd would refuse the stored files (or ``files``, as read), or None; missing
        files are not judged here. With ``judge`` off, only a verdict made earlier is given
        (``verdicts.NotJudged`` when there is none): it never waits."""
        read = self.read() if files is None else files
        present = {name: data for name, data in read.items() if data is not None}
        return verdicts.refusal(present) if judge else verdicts.kept(present)

    def summary(self, files: Mapping[str, bytes | None] | None = None) -> dict[str, object]:
        """What the stored files (or ``files``, as read) are: ``judging.summary``."""
        from acap_http.tls import judging  # noqa: PLC0415  (cryptography: see the module's note)

        return judging.summary(self.read() if files is None else files)

    def recover(self) -> None:
        """At start: finish or discard what a crash interrupted."""
        done = self.files.recover()
        if done:
            logger.warning("In %s: %s", self.directory, done)
