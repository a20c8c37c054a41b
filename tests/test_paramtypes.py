"""Every type string form of paramConfig, with accepted, normalised and refused values."""

from __future__ import annotations

import pytest

from acap_http.errors import ManifestError
from acap_http.manifest import ParamDecl
from acap_http.paramtypes import Choice, InvalidValue, parse_spec

# type string -> ([(value, canonical)], [refused values])
TYPES: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "bool:no,yes": ([("yes", "yes"), ("no", "no"), ("YES", "yes"), ("No", "no")], ["maybe", "", "1", "true", "yes "]),
    "bool:off,on": ([("on", "on"), ("OFF", "off")], ["yes", "no"]),
    "enum:debug,info": ([("debug", "debug"), ("INFO", "info")], ["warn", "", "debug,info"]),
    "enum:debug,info,warn,error,fatal": ([("fatal", "fatal"), ("Warn", "warn")], ["warning", "trace"]),
    "enum:low|Low quality,high|High quality": ([("low", "low"), ("HIGH", "high")], ["Low quality", "medium"]),
    "string": (
        [("anything at all", "anything at all"), ("", ""), ("-1 NOT STARTED", "-1 NOT STARTED")],
        # Whatever ends a line for str.splitlines or a client (NEL, LS, PS, FS …) would forge one; a bidi
        # override would make the line read otherwise.
        ["a\nb", "\x00", "a\x85b", "a\u2028b", "a\u2029b", "a\x1cb", "a\u202eb"],
    ),
    "string:maxlen=5": ([("abcde", "abcde"), ("", "")], ["abcdef", "tab\t"]),
    "int": (
        [("42", "42"), ("-7", "-7"), ("+5", "5"), ("007", "7"), (" 3 ", "3"), ("9" * 20, "9" * 20)],
        # 5,000 digits made int() raise (Python's limit is 4,300), which was a 500; Unicode digits are not ASCII's.
        ["4.2", "", "four", "0x10", "9" * 21, "1" * 5000, "\u0663"],
    ),
    "int:min=1;max=10": ([("1", "1"), ("10", "10")], ["0", "11", "-1"]),
    "int:min=0": ([("0", "0"), ("99999", "99999")], ["-1"]),
    "int:range=1024-65535": ([("2376", "2376"), ("1024", "1024"), ("65535", "65535")], ["1023", "65536"]),
    "int:range=-10-10": ([("-10", "-10"), ("10", "10")], ["-11", "11"]),
    "int:maxlen=3": ([("999", "999")], ["1000"]),
    "readonly:string": ([("0 RUNNING", "0 RUNNING")], ["two\nlines"]),
    "hidden:bool:no,yes": ([("yes", "yes")], ["maybe"]),
    "hidden:readonly:int:min=0": ([("3", "3")], ["-3"]),
}


@pytest.mark.parametrize(("type_string", "accepted", "refused"), [(t, *cases) for t, cases in TYPES.items()])
def test_type_string_forms(type_string: str, accepted: list[tuple[str, str]], refused: list[str]) -> None:
    """Each type accepts its values in their canonical spelling and refuses the rest."""
    spec = parse_spec(ParamDecl("P", type_string, accepted[0][1]))
    for value, canonical in accepted:
        assert spec.normalise(value) == canonical
    for value in refused:
        with pytest.raises(InvalidValue):
            spec.normalise(value)


@pytest.mark.parametrize(
    ("type_string", "hidden", "readonly"),
    [
        ("string", False, False),
        ("hidden:string", True, False),
        ("readonly:string", False, True),
        ("hidden:readonly:string", True, True),
        ("readonly:hidden:string", True, True),
    ],
)
def test_control_words(type_string: str, hidden: bool, readonly: bool) -> None:
    """hidden: and readonly: may stand in front of a type, in either order."""
    spec = parse_spec(ParamDecl("P", type_string, "x"))
    assert (spec.hidden, spec.readonly) == (hidden, readonly)


def test_enum_nice_names() -> None:
    """An enum's nice names are kept for display; its values are what is stored."""
    spec = parse_spec(ParamDecl("P", "enum:low|Low quality,high", "low"))
    assert isinstance(spec.type, Choice)
    assert spec.type.values == ("low", "high")
    assert spec.type.labels == ("Low quality", "high")


@pytest.mark.parametrize(
    ("type_string", "default", "message"),
    [
        ("float", "1", "unknown type 'float'"),
        ("bool:yes", "yes", "two different words"),
        ("bool:no,no", "no", "two different words"),
        ("enum:a,,b", "a", "distinct values"),
        ("enum:a,a", "a", "distinct values"),
        ("int:min=5;max=1", "3", "above maximum"),
        ("int:range=5", "5", "LOW-HIGH"),
        ("int:step=2", "2", "unknown option step"),
        ("int:min=x", "2", "whole number"),
        ("string:maxlen", "", "needs a value"),
        ("bool:no,yes", "maybe", "expected one of no, yes"),
        ("int:min=0", "-1", "smaller than 0"),
    ],
)
def test_bad_declarations_are_manifest_errors(type_string: str, default: str, message: str) -> None:
    """A type string that does not parse, or a default its type refuses, stops the program at start."""
    with pytest.raises(ManifestError, match=message) as refused:
        parse_spec(ParamDecl("Bad", type_string, default))
    assert "parameter Bad" in str(refused.value)
