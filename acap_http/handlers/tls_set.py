"""``/local/<app>/tls``: the three TLS files as one set.

POST stores them together (each validated, all or nothing) and asks for one
restart; GET describes the stored set as JSON, without key material.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

from acap_http import tls, tlsset
from acap_http.handlers.multipart import read_file_parts
from acap_http.handlers.responses import HttpError
from acap_http.handlers.tls_files import COPY_FAILED, TlsFileHandler, validated

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsSetHandler:
    files: TlsFileHandler

    def post(self, request: Request) -> Response:
        parts = read_file_parts(request, self.files.limits)
        names = [part.field for part in parts]
        wanted = list(tls.TLS_FILES)
        if sorted(names) != sorted(wanted):
            unknown = sorted(set(names) - set(wanted)) or "none"
            missing = sorted(set(wanted) - set(names)) or "none"
            raise HttpError(
                400,
                f"A set is one file part named after each of {', '.join(wanted)} "
                f"(curl -F ca.pem=@ca.pem …); missing: {missing}, unexpected or repeated: {unknown}",
            )
        staged = {
            part.field: (validated(tls.TLS_FILES[part.field], part.data), tls.TLS_FILES[part.field].mode)
            for part in parts
        }
        try:
            self.files.store.write_many(staged)
        except OSError as err:
            logger.error("Could not store the TLS set in %s: %s", self.files.store.directory, err)
            raise HttpError(500, COPY_FAILED) from None
        logger.info("Stored the TLS set: %s", ", ".join(staged))
        return self.files.stored("TLS set uploaded")

    def get(self, request: Request) -> Response:
        store = self.files.store
        files = {name: (store.read(name) if store.exists(name) else None) for name in tls.TLS_FILES}
        body = json.dumps(tlsset.summary(files), indent=2) + "\n"
        return Response(body, status=200, content_type="application/json")
