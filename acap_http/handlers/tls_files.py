"""``/local/<app>/<tls file>``: POST stores one TLS file for dockerd, DELETE removes it.

Status codes and sentences are the original application's (SPEC section 3);
the reasons appended to them are ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from acap_http import tls, tlsset
from acap_http.errors import InvalidPem
from acap_http.filestore import FileStore
from acap_http.handlers.multipart import UploadLimits, read_file_parts
from acap_http.handlers.responses import HttpError

logger = logging.getLogger(__name__)

COPY_FAILED = "Failed to copy file to localdata"
NOT_FOUND = "File not found in localdata"

RestartHook = Callable[[str], None]
"""Asks for a dockerd restart; the argument says why, for the log."""


# On the 204 of an upload when the stored set would not let dockerd start: the
# reason. dockerd is then not restarted (or, if it is not running, not started).
RESTART_HEADER = "X-Dockerd-Restart"


@dataclass(frozen=True)
class TlsFileHandler:
    store: FileStore
    restart: RestartHook
    tls_in_use: Callable[[], bool]  # whether dockerd serves TLS with these files under the settings
    limits: UploadLimits = field(default_factory=UploadLimits)

    def post(self, request: Request, tls_file: tls.TlsFile) -> Response:
        parts = read_file_parts(request, self.limits)
        if len(parts) != 1:
            raise HttpError(
                400,
                f"Expected exactly one file part, got {len(parts)}. Send it as: curl -F file=@{tls_file.name}",
            )
        data = validated(tls_file, parts[0].data)
        try:
            self.store.write(tls_file.name, data, tls_file.mode)
        except OSError as err:
            logger.error("Could not store %s in %s: %s", tls_file.name, self.store.directory, err)
            raise HttpError(500, COPY_FAILED) from None
        logger.info("Stored %s (%d bytes)", tls_file.name, len(data))
        return self.stored(f"{tls_file.name} uploaded")

    def stored(self, what: str) -> Response:
        """After an upload: one restart request, and the 204 that says if dockerd will refuse the set."""
        self.restart(what)
        response = Response(status=204)
        refusal = tlsset.stored_refusal(self.store.directory) if self.tls_in_use() else None
        if refusal:
            logger.warning("%s, but dockerd would refuse the TLS files: %s", what, refusal)
            response.headers[RESTART_HEADER] = f"refused: {refusal}; dockerd keeps the files it started with"
        return response

    def delete(self, request: Request, tls_file: tls.TlsFile) -> Response:
        try:
            self.store.remove(tls_file.name)
        except FileNotFoundError:
            raise HttpError(404, NOT_FOUND) from None
        except OSError as err:
            logger.error("Could not remove %s from %s: %s", tls_file.name, self.store.directory, err)
            raise HttpError(500, f"Failed to remove file from localdata: {err.strerror}") from None
        # As in the original, a removal does not restart dockerd: it keeps the
        # files it has loaded until something else restarts it.
        logger.info("Removed %s", tls_file.name)
        return Response(status=204)


def validated(tls_file: tls.TlsFile, data: bytes) -> bytes:
    """The upload as it is to be stored, or 400 with the original sentence and the reason."""
    try:
        return tls.validate(tls_file, data)
    except InvalidPem as err:
        logger.warning("Refused upload of %s: %s", tls_file.name, err)
        raise HttpError(400, f"{tls_file.invalid_sentence} {err}") from None
