"""``/local/<app>/info``: what tooling reads of this instance in one place (JSON, any user): the
application, how dockerd runs, and the host groups its containers see (rootless)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class InfoEndpoint:
    describe: Callable[[], dict[str, object]]

    def get(self, request: Request) -> Response:
        return Response(json.dumps(self.describe(), indent=2) + "\n", status=200, content_type="application/json")
