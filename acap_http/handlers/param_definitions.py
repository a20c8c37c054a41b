"""``param.cgi?action=listdefinitions&listformat=xmlschema``: the parameters with their types and
security levels, as a camera describes them (Axis's VAPIX Parameter management documentation:
``parameterDefinitions`` in the ``http://www.axis.com/ParameterDefinitionsSchema`` namespace,
``<group name=…>`` nested down to ``<parameter name= value= securityLevel= niceName=>`` with a
``<type>`` of ``bool``, ``enum``, ``string`` or ``int``).

A security level is four digits, the level needed to create, delete, read and write: 0 anyone,
1 viewer, 4 operator, 6 admin, 7 root (the device itself). The application's parameters are read
by any user and written by an admin, as param.cgi allows; a read-only one (Status) is written by
the application alone; the device's properties are constants.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from acap_http.handlers.param_tree import Entry
from acap_http.paramtypes import Choice, Integer, ParamSpec, Text

NAMESPACE = "http://www.axis.com/ParameterDefinitionsSchema"
SCHEMA_INSTANCE = "http://www.w3.org/2001/XMLSchema-instance"
SETTABLE, WRITTEN_BY_APP, CONSTANT = "7716", "7717", "7707"


def document(entries: list[Entry], model: str, firmware: str, schema_host: str) -> str:
    """The whole answer: every entry under ``<group name="root">``, groups nested by dotted name."""
    top = ET.Element("parameterDefinitions", {
        "xmlns": NAMESPACE,
        "xmlns:xsi": SCHEMA_INSTANCE,
        "xsi:schemaLocation": f"{NAMESPACE} http://{schema_host}/pub/parameterdefinitions.xsd",
        "version": "1.0",
    })  # fmt: skip
    ET.SubElement(top, "model").text = model
    ET.SubElement(top, "firmwareVersion").text = firmware
    root = ET.SubElement(top, "group", {"name": "root"})
    groups: dict[tuple[str, ...], ET.Element] = {(): root}
    for entry in entries:
        *parents, name = entry.path.split(".")
        _parameter(_group(groups, tuple(parents)), name, entry)
    ET.indent(top, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n"


def _group(groups: dict[tuple[str, ...], ET.Element], path: tuple[str, ...]) -> ET.Element:
    if path not in groups:
        groups[path] = ET.SubElement(_group(groups, path[:-1]), "group", {"name": path[-1]})
    return groups[path]


def _parameter(parent: ET.Element, name: str, entry: Entry) -> None:
    spec = entry.spec
    level = CONSTANT if spec is None else WRITTEN_BY_APP if spec.readonly else SETTABLE
    element = ET.SubElement(parent, "parameter", {
        "name": name, "value": entry.value, "securityLevel": level, "niceName": name,
    })  # fmt: skip
    type_ = ET.SubElement(element, "type", _type_attributes(spec))
    if spec is None:
        ET.SubElement(type_, "string")
        return
    kind = spec.type
    if isinstance(kind, Choice) and kind.boolean:
        ET.SubElement(type_, "bool", {"true": kind.values[1], "false": kind.values[0]})
    elif isinstance(kind, Choice):
        choices = ET.SubElement(type_, "enum")
        for value, label in zip(kind.values, kind.labels, strict=True):
            ET.SubElement(choices, "entry", {"value": value, **({"niceValue": label} if label != value else {})})
    elif isinstance(kind, Integer):
        bounds = {"min": kind.minimum, "max": kind.maximum, "maxlen": kind.maxlen}
        ET.SubElement(type_, "int", {key: str(bound) for key, bound in bounds.items() if bound is not None})
    elif isinstance(kind, Text):
        ET.SubElement(type_, "string", {"maxlen": str(kind.maxlen)} if kind.maxlen is not None else {})


def _type_attributes(spec: ParamSpec | None) -> dict[str, str]:
    if spec is None:
        return {"readonly": "true", "const": "true"}
    return {
        **({"readonly": "true"} if spec.readonly else {}),
        **({"hidden": "true"} if spec.hidden else {}),
    }
