"""The ACAP manifest (``manifest/manifest.json``): the one place where the
application's name, its HTTP endpoints with their access levels, and its
parameters are declared. Everything else reads them from here."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acap_http.errors import ManifestError

_T = TypeVar("_T")


# The front puts the authenticated user's level in this request variable, so
# the app can decide where the URL alone does not (an update in a POST body).
ACCESS_ENV = "ACAP_ACCESS_LEVEL"


class Access(enum.IntEnum):
    """Camera user levels, ordered: a higher level may do what a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def word(self) -> str:
        """The level as the manifest and the camera spell it."""
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> Access:
        try:
            return cls[word.upper()]
        except KeyError:
            levels = ", ".join(level.word for level in cls)
            raise ManifestError(f"unknown access level {word!r} (expected one of {levels})") from None


@dataclass(frozen=True)
class HttpEndpoint:
    """One ``httpConfig`` entry: served at ``/local/<appName>/<name>``."""

    name: str
    type: str
    access: Access


@dataclass(frozen=True)
class ParamDecl:
    """One ``paramConfig`` entry, its type string still unparsed."""

    name: str
    type: str
    default: str


@dataclass(frozen=True)
class Manifest:
    app_name: str
    friendly_name: str
    version: str
    endpoints: tuple[HttpEndpoint, ...]
    params: tuple[ParamDecl, ...]
    groups: tuple[str, ...] = ()  # resources.linux.user.groups: host groups the app's user is a member of
    vendor: str = ""  # setup.vendor, which a manifest may leave out
    setting_page: str = ""  # configuration.settingPage: the httpConfig entry of the settings page, if any

    @property
    def local_prefix(self) -> str:
        """URL prefix of the application's own endpoints, with trailing slash."""
        return f"/local/{self.app_name}/"

    def endpoint_path(self, endpoint: HttpEndpoint) -> str:
        return self.local_prefix + endpoint.name

    @property
    def setting_page_endpoint(self) -> HttpEndpoint | None:
        return next((e for e in self.endpoints if e.name == self.setting_page), None) if self.setting_page else None


def load(path: Path) -> Manifest:
    """Read and check a manifest file; any defect is a ManifestError naming the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return parse(document)
    except OSError as err:
        raise ManifestError(f"cannot read manifest {path}: {err.strerror}") from err
    except (ValueError, ManifestError) as err:
        raise ManifestError(f"manifest {path}: {err}") from err


def parse(document: Any) -> Manifest:
    package = _member(document, "acapPackageConf", dict)
    setup = _member(package, "setup", dict)
    configuration = _member(package, "configuration", dict)
    endpoints = tuple(
        HttpEndpoint(
            name=_member(entry, "name", str),
            type=_member(entry, "type", str),
            access=Access.parse(_member(entry, "access", str)),
        )
        for entry in _member(configuration, "httpConfig", list)
    )
    params = tuple(
        ParamDecl(
            name=_member(entry, "name", str),
            type=_member(entry, "type", str),
            default=_member(entry, "default", str),
        )
        for entry in _member(configuration, "paramConfig", list)
    )
    for kind, names in (("httpConfig", [e.name for e in endpoints]), ("paramConfig", [p.name for p in params])):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ManifestError(f"{kind} declares {', '.join(duplicates)} more than once")
    for endpoint in endpoints:
        if not endpoint.name or "/" in endpoint.name or endpoint.name.startswith("."):
            raise ManifestError(f"httpConfig name {endpoint.name!r} is not a plain file name")
    setting_page = _optional(configuration, "settingPage")
    if setting_page and setting_page not in [endpoint.name for endpoint in endpoints]:
        raise ManifestError(f"settingPage {setting_page!r} is not one of the httpConfig entries")
    return Manifest(
        app_name=_member(setup, "appName", str),
        friendly_name=_member(setup, "friendlyName", str),
        version=_member(setup, "version", str),
        endpoints=endpoints,
        params=params,
        groups=_groups(document),
        vendor=_optional(setup, "vendor"),
        setting_page=setting_page,
    )


def _groups(document: Any) -> tuple[str, ...]:
    """``resources.linux.user.groups``, which a manifest may leave out."""
    user = document.get("resources", {}).get("linux", {}).get("user", {}) if isinstance(document, dict) else {}
    groups = user.get("groups", []) if isinstance(user, dict) else []
    if not isinstance(groups, list) or not all(isinstance(name, str) for name in groups):
        raise ManifestError("resources.linux.user.groups must be a list of group names")
    return tuple(groups)


def _optional(container: dict[str, Any], key: str) -> str:
    return _member(container, key, str) if key in container else ""


def _member(container: Any, key: str, kind: type[_T]) -> _T:
    if not isinstance(container, dict) or key not in container:
        raise ManifestError(f"missing {key!r}")
    value = container[key]
    if not isinstance(value, kind):
        raise ManifestError(f"{key!r} must be a {kind.__name__}, not {type(value).__name__}")
    return value
