"""The parameters a client of this host reads, as one tree: the application's group (the
manifest's ``paramConfig``, values from the store) beside the device's read-only groups
(``Brand``, ``Properties``; see ``device``). param.cgi lists it, its definitions describe it, and
the JSON Param API serves it nested.

A path names a group or a parameter in it, ``root.`` optional, the group's name in any case as
VAPIX takes it: ``root.dockerdwrapper``, ``dockerdwrapper.UseTLS``, ``Properties.System``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acap_http.params import ParamStore
from acap_http.paramtypes import ParamSpec

ROOT = "root."


@dataclass(frozen=True)
class Entry:
    group: str  # the top-level group: the application's name, "Brand" or "Properties"
    name: str  # the parameter within it, dotted below the group ("API.HTTP.Version")
    value: str
    spec: ParamSpec | None  # None: a read-only property of the device

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}"


class ParamTree:
    def __init__(self, store: ParamStore, app_name: str, device_groups: Mapping[str, Mapping[str, str]]) -> None:
        self.store = store
        self.app_name = app_name
        self._device = device_groups

    def groups(self) -> list[str]:
        return [self.app_name, *self._device]

    def select(self, path: str) -> list[Entry] | None:
        """The entries ``path`` stands for (a group lists all but hidden parameters, which only
        their own name lists), or None if it names nothing here."""
        group, name = self._split(path)
        if group is None:
            return None
        if group == self.app_name:
            return self._app(name)
        found = [
            Entry(group, key, value, None)
            for key, value in self._device[group].items()
            if not name or key.casefold() == name.casefold() or key.casefold().startswith(name.casefold() + ".")
        ]
        return found or None

    def everything(self) -> list[Entry]:
        return [entry for group in self.groups() for entry in self.select(group) or []]

    def app_name_of(self, path: str) -> str | None:
        """``[root.]<app>.<Name>`` -> ``<Name>``; None for a path outside the application's group
        or the group itself (what param.cgi may update)."""
        group, name = self._split(path)
        return name if group == self.app_name and name else None

    def _app(self, name: str) -> list[Entry] | None:
        values = self.store.values()
        if not name:
            return [Entry(self.app_name, s.name, values[s.name], s) for s in self.store.specs.values() if not s.hidden]
        spec = self.store.find(name)
        return [Entry(self.app_name, spec.name, values[spec.name], spec)] if spec else None

    def _split(self, path: str) -> tuple[str | None, str]:
        if path.casefold().startswith(ROOT):
            path = path[len(ROOT) :]
        head, _, name = path.partition(".")
        group = next((known for known in self.groups() if known.casefold() == head.casefold()), None)
        return group, name
