"""The WSGI app served over FastCGI on a unix socket by flup's threaded server.

flup's loop runs in a thread of its own so that the main thread keeps the
signals; its own signal handling is switched off. The socket gets mode 0660
and the group of its directory, so the web server reaches it through group
membership instead of a world-writable socket.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from flup.server.fcgi import WSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

logger = logging.getLogger(__name__)

SOCKET_MODE = 0o660
# flup closes new connections once every thread is busy, and Apache then
# answers 503; 64 threads served 16 concurrent clients without that.
MAX_THREADS = 64


class _FlupServer(WSGIServer):  # type: ignore[misc]
    """flup's threaded FastCGI server on a socket we prepared, without its signal handlers."""

    def __init__(self, app: WSGIApplication, listener: socket.socket) -> None:
        super().__init__(app, bindAddress=None, multiplexed=False, maxThreads=MAX_THREADS)
        self._listener = listener

    def _setupSocket(self) -> socket.socket:
        return self._listener

    def _installSignalHandlers(self) -> None:
        pass

    def _restoreSignalHandlers(self) -> None:
        pass


class FastCgiServer:
    """Serves ``app`` on ``socket_path`` until ``stop``."""

    def __init__(self, app: WSGIApplication, socket_path: Path, on_exit: Callable[[], None] = lambda: None) -> None:
        self.socket_path = socket_path
        self._listener = _bind(socket_path)
        self._server = _FlupServer(app, self._listener)
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._serve, name="fastcgi", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("Serving FastCGI on %s", self.socket_path)

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception:
            logger.exception("FastCGI server failed")
        finally:
            self._on_exit()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish, and remove the socket."""
        self._server._keepGoing = False
        # flup's loop wakes from select() once a second; a connection wakes it now.
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
            wake.connect(str(self.socket_path))
        self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        logger.info("FastCGI server stopped")


def _bind(path: Path) -> socket.socket:
    """A listening unix socket at ``path`` with its mode and group set before anyone can connect."""
    if path.is_socket():
        path.unlink()  # left by a process that did not stop cleanly
    elif path.exists():
        raise FileExistsError(errno.EEXIST, "not a socket; refusing to replace it", str(path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        # Until listen() nobody can connect, so these take effect in time.
        os.chmod(path, SOCKET_MODE)
        directory_group = path.parent.stat().st_gid
        if path.stat().st_gid != directory_group:
            try:
                os.chown(path, -1, directory_group)
            except PermissionError:
                logger.warning(
                    "Cannot give %s the group of its directory (gid %d); the web server may not reach it",
                    path,
                    directory_group,
                )
        listener.listen(socket.SOMAXCONN)
    except BaseException:
        listener.close()
        raise
    return listener
