"""Where things are: the application directory laid out as on the camera,
and the manifest that declares the application."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acap_http import identity
from acap_http.errors import SetupError

# Names the fronts, the application and the tools share: defined once, here, in a module that
# imports nothing heavy (``up``'s parent reads them without loading werkzeug or the parameter store).
APP_USER = f"acap-{identity.NAME}"  # who the application and a rootless dockerd run as
PARAMS_FILE = "params.json"  # the parameter store, in the app directory
REALM = "acap-http"  # both fronts' authentication realm
# The application caps a TLS upload at 64 KiB; the fronts refuse bodies far past that without
# bothering it.
FRONT_MAX_BODY = 1024 * 1024
HANDLER_MAX_BODY = 64 * 1024  # a param.cgi, param API or discovery request's body
RESTART_HEADER = "X-Dockerd-Restart"  # what an upload or a daemon.json change did to dockerd

# Where the camera keeps the application, and the applications' areas on the SD card (each
# named after its application: options.sd_card_area).
CAMERA_APP_DIR = Path("/usr/local/packages") / identity.NAME
CAMERA_SD_MOUNT = Path("/var/spool/storage/SD_DISK")
CAMERA_SD_AREAS = Path("/var/spool/storage/areas/SD_DISK")
# dockerd gives containers 10 s to stop; systemd kills the app at about 15 s.
STOP_GRACE = 13.0
# The longest an application stop takes: the containers (STOP_GRACE - 2), then dockerd,
# containerd and the namespace holder (STOP_GRACE each, at most). serve's gunicorn and the
# systemd unit wait longer than that.
APPLICATION_STOP = (STOP_GRACE - 2) + 3 * STOP_GRACE
# serve: gunicorn's wait for its worker (the application's stop, beside the requests in flight),
# after which it kills it; the unit's TimeoutStopSec is above that.
SERVE_GRACEFUL_STOP = int(APPLICATION_STOP) + 10
# The top of a source checkout, when the package runs from one (editable install).
CHECKOUT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class AppPaths:
    """``<app-dir>/localdata`` holds the TLS files and daemon.json, as on the camera."""

    app_dir: Path

    @property
    def localdata(self) -> Path:
        return self.app_dir / "localdata"

    @property
    def front(self) -> Path:
        """State of the local Apache front (`acap-http up`): its users' passwords."""
        return self.app_dir / "front"


def in_checkout() -> bool:
    return (CHECKOUT_DIR / "setup.cfg").is_file() and (CHECKOUT_DIR / "manifest").is_dir()


def default_local_app_dir() -> Path:
    """The app directory of `acap-http up`: inside the checkout (git-ignored), else in the home."""
    if in_checkout():
        return CHECKOUT_DIR / "var" / identity.NAME
    return Path.home() / ".local" / "share" / "acap-http" / identity.NAME


def default_certs_dir() -> Path:
    """Where `acap-http certs` keeps files: certs/ in a checkout (git-ignored), else ./certs."""
    return CHECKOUT_DIR / "certs" if in_checkout() else Path("certs")


def find_manifest(app_dir: Path) -> Path:
    """The checkout's manifest, or the one the camera installs at the app directory's top."""
    candidates = [identity.MANIFEST, app_dir / "manifest.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SetupError("no manifest found; looked at " + " and ".join(map(str, candidates)) + " (use --manifest)")


# glibc gives each thread that allocates an arena of its own (up to 8 per core), and keeps
# what is freed in each: a long-lived, many-threaded process grows by fragments. Two arenas
# keep ``run`` and ``serve`` flat (``make soak``); set in the environment they start with.
MALLOC_ARENAS = {"MALLOC_ARENA_MAX": "2"}
