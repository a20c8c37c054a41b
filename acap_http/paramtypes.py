"""Parameter types, parsed from the ``type`` strings of the manifest's
``paramConfig`` (pure).

    bool:no,yes                       the two words, false first
    enum:debug,info|Info              values, each optionally ``value|Nice name``
    string  string:maxlen=64          any single line, optionally capped
    int  int:min=0;max=9  int:range=1-65535

``hidden:`` and ``readonly:`` may stand in front of any of them. A spec
validates a value and returns its canonical spelling, or raises InvalidValue.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from acap_http.errors import ManifestError
from acap_http.manifest import ParamDecl

CONTROL_WORDS = ("hidden", "readonly")
UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp"})  # control, format, line and paragraph separators
# An int parameter's value: a 64-bit integer's digits at most (Python would read 4,300 before it
# refuses, and a million when told to).
MAX_DIGITS = 20


class InvalidValue(ValueError):
    """A value its parameter's type does not allow; the message says which are allowed."""


@dataclass(frozen=True)
class Choice:
    """bool and enum: one of a fixed set of words, matched without regard to case."""

    values: tuple[str, ...]
    labels: tuple[str, ...]  # nice names for a settings page; the values themselves if none
    boolean: bool = False  # bool:false,true (two words, false first), not an enum

    def normalise(self, value: str) -> str:
        for known in self.values:
            if value.casefold() == known.casefold():
                return known
        raise InvalidValue(f"expected one of {', '.join(self.values)}")


@dataclass(frozen=True)
class Text:
    maxlen: int | None = None

    def normalise(self, value: str) -> str:
        # One value is one line of param.cgi's answer: no line breaks or other controls, Unicode's
        # included (U+0085, U+2028, U+2029 end a line for str.splitlines and for many clients),
        # nor invisible format characters (bidi overrides) that would make it read otherwise.
        if not value.isprintable() and any(unicodedata.category(char) in UNSAFE for char in value):
            raise InvalidValue("control characters, line separators and format characters are not allowed")
        if self.maxlen is not None and len(value) > self.maxlen:
            raise InvalidValue(f"longer than {self.maxlen} characters")
        return value


@dataclass(frozen=True)
class Integer:
    minimum: int | None = None
    maximum: int | None = None
    maxlen: int | None = None

    def normalise(self, value: str) -> str:
        digits = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", digits):
            raise InvalidValue("expected a whole number")
        if len(digits) > (self.maxlen or MAX_DIGITS):
            raise InvalidValue(f"longer than {self.maxlen or MAX_DIGITS} characters")
        number = int(digits)
        if self.minimum is not None and number < self.minimum:
            raise InvalidValue(f"smaller than {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise InvalidValue(f"larger than {self.maximum}")
        return str(number)


ParamType = Choice | Text | Integer


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    default: str
    hidden: bool = False
    readonly: bool = False  # written by the program only, never through param.cgi

    def normalise(self, value: str) -> str:
        return self.type.normalise(value)


def parse_spec(decl: ParamDecl) -> ParamSpec:
    """The typed spec of one ``paramConfig`` entry; its default must be valid."""
    try:
        controls, type_ = _split_controls(decl.type)
        spec = ParamSpec(
            decl.name, parse_type(type_), decl.default, hidden="hidden" in controls, readonly="readonly" in controls
        )
        spec.normalise(decl.default)
    except (ValueError, InvalidValue) as err:
        raise ManifestError(f"parameter {decl.name} (type {decl.type!r}, default {decl.default!r}): {err}") from err
    return spec


def _split_controls(text: str) -> tuple[set[str], str]:
    controls: set[str] = set()
    while (word := text.partition(":")[0]) in CONTROL_WORDS:
        controls.add(word)
        text = text.partition(":")[2]
    return controls, text


def parse_type(text: str) -> ParamType:
    """Parse a type string without its control words."""
    kind, _, rest = text.partition(":")
    if kind == "bool":
        words = rest.split(",")
        if len(words) != 2 or not all(words) or words[0] == words[1]:
            raise ValueError("bool needs two different words, false first: bool:no,yes")
        return Choice(tuple(words), tuple(words), boolean=True)
    if kind == "enum":
        entries = [entry.partition("|") for entry in rest.split(",")]
        values = tuple(value for value, _, _ in entries)
        if not all(values) or len(set(values)) != len(values):
            raise ValueError("enum needs distinct values: enum:a,b|Nice name")
        return Choice(values, tuple(label or value for value, _, label in entries))
    options = _options(rest)
    if kind == "string":
        _only(options, {"maxlen"})
        return Text(maxlen=_int(options, "maxlen"))
    if kind == "int":
        _only(options, {"min", "max", "range", "maxlen"})
        minimum, maximum = _int(options, "min"), _int(options, "max")
        if "range" in options:
            bounds = re.fullmatch(r"(-?\d+)-(-?\d+)", options["range"])
            if not bounds:
                raise ValueError(f"range must be LOW-HIGH, not {options['range']!r}")
            minimum, maximum = int(bounds.group(1)), int(bounds.group(2))
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError(f"minimum {minimum} is above maximum {maximum}")
        return Integer(minimum, maximum, _int(options, "maxlen"))
    raise ValueError(f"unknown type {kind!r} (expected bool, enum, string or int)")


def _options(text: str) -> dict[str, str]:
    options = {}
    for item in filter(None, text.split(";")):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"option {item!r} needs a value (name=value)")
        options[key.strip()] = value.strip()
    return options


def _only(options: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown option {', '.join(unknown)}")


def _int(options: dict[str, str], key: str) -> int | None:
    if key not in options:
        return None
    try:
        return int(options[key])
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {options[key]!r}") from None
