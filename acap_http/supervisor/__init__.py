"""Keeps dockerd running with the current settings and files.

For now only the restart requests exist: the app calls ``log_restart_request``
after a stored upload, and it records the request in the log.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def log_restart_request(reason: str) -> None:
    """The restart hook while no dockerd supervisor is connected."""
    logger.info("dockerd restart requested (%s); no dockerd supervisor is connected yet", reason)
