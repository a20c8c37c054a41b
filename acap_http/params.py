"""The parameter store: typed values with the manifest's defaults, kept in
``<app-dir>/params.json``, changed all or nothing, and observable.

Only what an operator sets is persisted. Read-only parameters (Status) are
the program's own live state: they start at their default in every process,
since a value left by an earlier run would not describe this one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from acap_http import config
from acap_http.filestore import FileStore
from acap_http.manifest import Manifest
from acap_http.paramtypes import Choice, InvalidValue, ParamSpec, parse_spec

logger = logging.getLogger(__name__)

STORE_FILE = config.PARAMS_FILE

Observer = Callable[[frozenset[str]], None]
"""Told the names whose value an update really changed."""


class UpdateRefused(ValueError):
    """Some pairs of an update cannot be applied; nothing of it was."""

    def __init__(self, refused: list[tuple[str, str, str]]) -> None:
        super().__init__("; ".join(f"{name}={value!r}: {why}" for name, value, why in refused))
        self.refused = refused  # (name, value, reason) as given, in request order


class ParamStore:
    def __init__(self, specs: Iterable[ParamSpec], directory: Path) -> None:
        self.specs: dict[str, ParamSpec] = {spec.name: spec for spec in specs}
        self._files = FileStore(directory)
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._values = {name: spec.default for name, spec in self.specs.items()}
        self._values.update(self._load())

    @classmethod
    def from_manifest(cls, manifest: Manifest, directory: Path) -> ParamStore:
        return cls((parse_spec(decl) for decl in manifest.params), directory)

    @property
    def path(self) -> Path:
        return self._files.path(STORE_FILE)

    def get(self, name: str) -> str:
        with self._lock:
            return self._values[name]

    def values(self) -> dict[str, str]:
        """Every value, in manifest order."""
        with self._lock:
            return dict(self._values)

    def is_on(self, name: str) -> bool:
        """Whether a bool parameter holds its true word (the second of ``bool:no,yes``)."""
        spec = self.specs[name]
        if not isinstance(spec.type, Choice) or len(spec.type.values) != 2:
            raise TypeError(f"{name} is not a bool parameter")
        return self.get(name) == spec.type.values[1]

    def find(self, name: str) -> ParamSpec | None:
        """The spec called ``name``, ignoring case as VAPIX does."""
        return self.specs.get(name) or next(
            (spec for spec in self.specs.values() if spec.name.casefold() == name.casefold()), None
        )

    def subscribe(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)

    def refusals(self, changes: Mapping[str, str], *, by_program: bool = False) -> list[tuple[str, str, str]]:
        """(name, value, reason) for each change ``update`` would refuse, in order."""
        refused = []
        for name, value in changes.items():
            spec = self.find(name)
            if spec is None:
                refused.append((name, value, "no such parameter"))
            elif spec.readonly and not by_program:
                refused.append((name, value, "read-only"))
            else:
                try:
                    spec.normalise(value)
                except InvalidValue as err:
                    refused.append((name, value, str(err)))
        return refused

    def _spec(self, name: str) -> ParamSpec:
        spec = self.find(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def update(self, changes: Mapping[str, str], *, by_program: bool = False) -> frozenset[str]:
        """Apply every change or none; returns, and tells observers, the names that changed.

        Read-only parameters can only be written ``by_program``.
        """
        refused = self.refusals(changes, by_program=by_program)
        if refused:
            raise UpdateRefused(refused)
        normalised = {self._spec(name).name: self._spec(name).normalise(value) for name, value in changes.items()}
        with self._lock:
            changed = frozenset(name for name, value in normalised.items() if self._values[name] != value)
            if not changed:
                return changed
            new_values = {**self._values, **normalised}
            if any(not self.specs[name].readonly for name in changed):
                self._save(new_values)
            self._values = new_values
            logger.info("Parameters changed: %s", ", ".join(f"{name}={new_values[name]}" for name in sorted(changed)))
            # Under the lock, so observers hear of updates in the order they were applied.
            for observer in self._observers:
                observer(changed)
        return changed

    def _save(self, values: Mapping[str, str]) -> None:
        persisted = {name: value for name, value in values.items() if not self.specs[name].readonly}
        self._files.write(STORE_FILE, (json.dumps(persisted, indent=2) + "\n").encode(), 0o600)

    def _load(self) -> dict[str, str]:
        try:
            document = json.loads(self.path.read_bytes())
            if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
                raise ValueError("not an object of strings")
        except FileNotFoundError:
            return {}
        except ValueError as err:  # includes JSON and UTF-8 decoding errors
            kept = self.path.with_name(f"{STORE_FILE}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            self.path.rename(kept)
            logger.error("Parameter file %s is corrupt (%s); kept it as %s and using defaults", self.path, err, kept)
            return {}
        loaded = {}
        for name, value in document.items():
            spec = self.specs.get(name)
            if spec is None or spec.readonly:
                logger.warning("Ignoring %s=%r in %s: not a settable parameter", name, value, self.path)
                continue
            try:
                loaded[name] = spec.normalise(value)
            except InvalidValue as err:
                logger.warning("Ignoring %s=%r in %s (%s); using %r", name, value, self.path, err, spec.default)
        return loaded
