"""What an operator chooses, in one family of options, so that every way of serving the application
reads a choice the same way: which manifest, which area of the card, whether ``--rootful`` may be.

``AppOptions`` is what every mode shares; ``Options`` is the application's own (what ``run`` takes,
and what ``serve`` hands its worker); ``HostOptions`` is what the fronts that play the camera on a
host add (``up``; ``serve`` adds its TLS files and users). Light on purpose: ``up``'s parent reads
them without loading the application.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acap_http import config
from acap_http.errors import SetupError

# Who ends TLS on the Docker API's port. dockerd: its own --tlsverify, and a restart of dockerd for
# every change of the files (the camera's way). front: the application (``apifront``), and a new
# file is a reload that no connected client notices.
TLS_BY_DOCKERD, TLS_BY_FRONT = "dockerd", "front"
TLS_BY = (TLS_BY_DOCKERD, TLS_BY_FRONT)


def address(host: str, port: int) -> str:
    """HOST:PORT as a URL or a command line writes it: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sd_card_area(areas: Path, app_name: str) -> Path:
    """The application's area on a card, named after the application as the camera names it, so
    that a manifest of another name gets its own area whichever mode serves it."""
    return areas / app_name


@dataclass(frozen=True, kw_only=True)
class AppOptions:
    """The choices of every serving mode."""

    app_dir: Path
    manifest_path: Path | None = None  # None: the checkout's, else APP_DIR/manifest.json
    docker_address: str = "0.0.0.0"
    tls_by: str = TLS_BY_DOCKERD  # who ends TLS on the API's port: dockerd (as on a camera) or the front
    # With the front: the client certificates let in, by subject common name or SAN; none: every
    # certificate of the CA, as dockerd's own TLS.
    api_clients: tuple[str, ...] = ()
    metrics_listen: tuple[str, int] | None = None  # the metrics' own listener (no authentication); None: none

    def __post_init__(self) -> None:
        if self.api_clients and self.tls_by != TLS_BY_FRONT:
            raise SetupError("--api-client needs --tls-by front: dockerd's own TLS lets in every certificate of the CA")
        if any(not name or not name.isprintable() for name in self.api_clients):
            raise SetupError("--api-client takes a certificate's common name or SAN: printable, not empty")

    def manifest_file(self) -> Path:
        """The manifest to serve, absolute: a child started with it (``up``'s ``run``) reads the same one."""
        return (self.manifest_path or config.find_manifest(self.app_dir.resolve())).resolve()


@dataclass(frozen=True, kw_only=True)
class Options(AppOptions):
    """What the application takes, whatever serves it."""

    stop_grace: float = config.STOP_GRACE
    sd_card_mount: Path = config.CAMERA_SD_MOUNT
    sd_card_area: Path | None = None  # None: the camera's area of the manifest's application

    def card_area(self, app_name: str) -> Path:
        return self.sd_card_area or sd_card_area(config.CAMERA_SD_AREAS, app_name)


@dataclass(frozen=True, kw_only=True)
class HostOptions(AppOptions):
    """The choices of a front that plays the camera on a host: where it listens, who the app runs as."""

    host: str
    port: int
    docker_address: str = "127.0.0.1"  # a host's dockerd is published on loopback unless asked
    rootful: bool = False  # as root: keep the app and dockerd as root instead of the app user
    sd_card: Path | None = None  # mount point of the disk that plays the SD card
    app_user: str = config.APP_USER  # who the app and dockerd run as, rootless (one per instance on a host)
    groups: tuple[str, ...] = ()  # host groups mapped into containers after the manifest's

    def check_rootful(self, command: str, euid: Callable[[], int] = os.geteuid) -> None:
        """``--rootful`` keeps the app and dockerd as root: nothing to keep unless started as root."""
        if self.rootful and euid() != 0:
            raise SetupError(
                f"--rootful runs the app and dockerd as root: start {command} as root, or leave --rootful out"
            )

    def card_area(self, app_name: str) -> Path | None:
        """The application's area on the disk that plays the card; None without one."""
        return sd_card_area(self.sd_card, app_name) if self.sd_card else None

    def application(self, manifest_file: Path, app_name: str) -> Options:
        """The application's options for this front: its card where ``--sd-card`` says, else the camera's."""
        area = self.card_area(app_name)
        return Options(
            app_dir=self.app_dir,
            manifest_path=manifest_file,
            docker_address=self.docker_address,
            tls_by=self.tls_by,
            api_clients=self.api_clients,
            metrics_listen=self.metrics_listen,
            sd_card_mount=self.sd_card or config.CAMERA_SD_MOUNT,
            sd_card_area=area or sd_card_area(config.CAMERA_SD_AREAS, app_name),
        )
