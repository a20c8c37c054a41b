"""``acap-http run``: the camera application. The application served with flup's FastCGI
server on the socket the camera (or ``up``) names in ``$FCGI_SOCKET_NAME``, until SIGTERM,
SIGINT or SIGHUP; then dockerd first, the server last."""

from __future__ import annotations

import os
from pathlib import Path

from acap_http.application import Application
from acap_http.errors import SetupError
from acap_http.options import Options
from acap_http.servers.fastcgi import FastCgiServer
from acap_http.servers.lifecycle import Stop

SOCKET_ENV = "FCGI_SOCKET_NAME"


def run(options: Options) -> int:
    socket_name = os.environ.get(SOCKET_ENV)
    if not socket_name:
        raise SetupError(
            f"${SOCKET_ENV} is not set: 'acap-http run' is started by the web server "
            "with the FastCGI socket's path in it (or use 'acap-http up')"
        )
    application = Application(options)
    stop = Stop()
    server = FastCgiServer(application.wsgi, Path(socket_name), on_exit=lambda: stop.post("FastCGI server ended"))
    server.start()
    application.start()
    stop.wait()
    application.stop()
    server.stop()
    return 0
