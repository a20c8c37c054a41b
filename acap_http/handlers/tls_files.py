"""``/local/<app>/<tls file>`` and ``/local/<app>/tls``: the TLS files of dockerd.

POST of one file stores it, DELETE removes it; POST of ``tls`` stores the three
as one set and GET describes them (JSON, never key material). Status codes and
sentences are the original Docker ACAP application's, word for word; the reasons
appended to them are ours. Storing, validating and judging are the TLS
store's; this module speaks HTTP and asks for restarts.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from acap_http import config
from acap_http.errors import InvalidPem
from acap_http.escape import printable
from acap_http.handlers.multipart import FilePart, UploadLimits, read_file_parts
from acap_http.handlers.responses import HttpError, write_failure
from acap_http.tls.files import TLS_FILES
from acap_http.tls.store import Change, TlsStore

logger = logging.getLogger(__name__)

COPY_FAILED = "Failed to copy file to localdata"
NOT_FOUND = "File not found in localdata"

RestartHook = Callable[[str], None]
"""Asks for a dockerd restart; the argument says why, for the log."""
Record = Callable[[str, str], None]
"""Hears how each upload ended: its file's name (``set`` for the three at once), and stored,
unchanged, refused or failed."""

# On the 204 of an upload: "unchanged" when the content was stored already (nothing
# written, no restart), or "refused: <reason>" when dockerd would not start with the
# stored set (it is then not restarted, or, if it is not running, not started).
RESTART_HEADER = config.RESTART_HEADER
UNCHANGED = "unchanged"
RELOADED = "reloaded"  # taken in place: dockerd (or the API's front) did not restart


@dataclass(frozen=True)
class TlsEndpoints:
    store: TlsStore
    restart: RestartHook
    tls_in_use: Callable[[], bool]  # whether dockerd serves TLS with these files under the settings
    reloads: Callable[[], bool] = lambda: False  # whether a new file is taken in place (the API's front)
    limits: UploadLimits = field(default_factory=UploadLimits)
    record: Record = lambda target, result: None

    def post_file(self, request: Request, name: str) -> Response:
        with self._recorded(name) as recorded:
            parts = read_file_parts(request, self.limits)
            if len(parts) != 1:
                raise HttpError(
                    400,
                    f"Expected exactly one file part, got {len(parts)}. Send it as: curl -F file=@{name}",
                )
            return recorded(self._store({name: parts[0].data}, f"{name} uploaded"))

    def delete_file(self, request: Request, name: str) -> Response:
        try:
            self.store.remove(name)
        except FileNotFoundError:
            raise HttpError(404, NOT_FOUND) from None
        except OSError as err:
            logger.error("Could not remove %s from %s: %s", name, self.store.directory, err)
            raise HttpError(*write_failure(err, "Failed to remove file from localdata", "the file is kept")) from None
        # As in the original, a removal does not restart dockerd: it keeps the
        # files it has loaded until something else restarts it.
        return Response(status=204)

    def post_set(self, request: Request) -> Response:
        with self._recorded("set") as recorded:
            parts = read_file_parts(request, self.limits)
            _check_set(parts)
            return recorded(self._store({part.field: part.data for part in parts}, "TLS set uploaded"))

    def get_set(self, request: Request) -> Response:
        body = json.dumps(self.store.summary(), indent=2) + "\n"
        return Response(body, status=200, content_type="application/json")

    def _store(self, files: dict[str, bytes], what: str) -> Response:
        """Store, then one restart request, and the 204 that says what dockerd will do."""
        try:
            change = self.store.put_set(files)
        except InvalidPem as err:
            logger.warning("Refused the upload of %s: %s", ", ".join(files), err)
            raise HttpError(400, str(err)) from None
        except OSError as err:
            logger.error("Could not store %s in %s: %s", ", ".join(files), self.store.directory, err)
            raise HttpError(*write_failure(err, COPY_FAILED, "the stored files are kept")) from None
        response = Response(status=204)
        if change is Change.UNCHANGED:
            response.headers[RESTART_HEADER] = UNCHANGED
            return response
        # Judged before the restart is asked for: the supervisor shares this store, and finds the
        # verdict kept (by content) instead of judging the set again.
        refusal = self.store.refusal() if self.tls_in_use() else None
        reloads = self.reloads()
        self.restart(what)
        if refusal:
            logger.warning("%s, but dockerd would refuse the TLS files: %s", what, refusal)
            response.headers[RESTART_HEADER] = f"refused: {refusal}; dockerd keeps the files it started with"
        elif reloads:
            response.headers[RESTART_HEADER] = RELOADED
        return response

    @contextlib.contextmanager
    def _recorded(self, target: str) -> Iterator[Callable[[Response], Response]]:
        """How the upload of ``target`` ends, told to ``record``: the answer it gives, or the error."""

        def recorded(response: Response) -> Response:
            self.record(target, UNCHANGED if response.headers.get(RESTART_HEADER) == UNCHANGED else "stored")
            return response

        try:
            yield recorded
        except HTTPException as err:
            self.record(target, "failed" if (err.code or 500) >= 500 else "refused")
            raise
        except Exception:
            self.record(target, "failed")
            raise


def _check_set(parts: list[FilePart]) -> None:
    """A set is one part named after each TLS file; say precisely what is wrong otherwise."""
    names = [part.field for part in parts]
    wanted = list(TLS_FILES)
    problems = []
    missing = [name for name in wanted if name not in names]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"more than one {', '.join(repeated)}")
    unexpected = sorted({name for name in names if name not in wanted})
    if unexpected:
        problems.append(f"unexpected {', '.join(printable(name) or '(no name)' for name in unexpected)}")
    if problems:
        raise HttpError(
            400,
            f"A set is one file part named after each of {', '.join(wanted)} "
            f"(curl -F ca.pem=@ca.pem …); this one has {'; '.join(problems)}.",
        )
