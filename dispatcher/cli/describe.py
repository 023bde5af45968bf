"""Argument types in words, from an action's JSON schema: ``text``, ``list of step``, ``id of x``.

The JSON schema is what a caller sends, so it (not the Python annotation) is described; ``Ref``
markers, which the schema cannot carry, turn ids into ids of a named table.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from dispatcher.actions.base import Ref

_FORMATS = {"uuid": "id", "email": "email address", "date-time": "date and time", "uri": "URL"}
_TYPES = {"integer": "integer", "number": "number", "boolean": "true/false", "null": "null"}
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def describe_schema(
    schema: dict[str, Any], definitions: dict[str, Any], table: str | None = None
) -> str:
    """One JSON schema node in words; ids are ids of ``table`` when it is given."""
    if "$ref" in schema:
        name = schema["$ref"].rpartition("/")[2]
        definition = definitions.get(name, {})
        if "enum" in definition:
            return describe_schema(definition, definitions)
        return _WORD_BOUNDARY.sub(" ", name.removesuffix("Args")).lower()
    if "anyOf" in schema:
        options = [item for item in schema["anyOf"] if item.get("type") != "null"]
        return " or ".join(describe_schema(item, definitions, table) for item in options) or "null"
    if "enum" in schema or "const" in schema:
        return " | ".join(str(value) for value in schema.get("enum", [schema.get("const")]))
    return _describe_typed(schema, definitions, table)


def _describe_typed(schema: dict[str, Any], definitions: dict[str, Any], table: str | None) -> str:
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "uuid" and table:
            return f"id of {table}"
        return _FORMATS.get(schema.get("format", ""), "text")
    if kind == "array":
        items = describe_schema(schema.get("items", {}), definitions, table)
        return f"list of {items.replace('id of ', 'ids of ', 1) if table else items}"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and values.get("type") not in (None, "object"):
            return f"object of {describe_schema(values, definitions)}"
        return "object"
    return _TYPES.get(kind, str(kind)) if isinstance(kind, str) else "any JSON"


def _schema_name(name: str, info: FieldInfo, properties: dict[str, Any]) -> str:
    candidates = [info.alias, name]
    if isinstance(info.validation_alias, AliasChoices):
        candidates[:0] = [item for item in info.validation_alias.choices if isinstance(item, str)]
    elif isinstance(info.validation_alias, str):
        candidates.insert(0, info.validation_alias)
    return next((item for item in candidates if item and item in properties), name)


def describe_arguments(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``[{"name", "type", "required"}]`` for every argument, in declaration order."""
    schema = model.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    definitions: dict[str, Any] = schema.get("$defs", {})
    described = []
    for name, info in model.model_fields.items():
        public = _schema_name(name, info, properties)
        tables = [marker.model.__tablename__ for marker in info.metadata if isinstance(marker, Ref)]
        text = describe_schema(properties.get(public, {}), definitions, next(iter(tables), None))
        described.append({"name": public, "type": text, "required": info.is_required()})
    return described


def describe_argument(argument: dict[str, Any]) -> str:
    """``prompt: text (optional)``."""
    optional = "" if argument["required"] else " (optional)"
    return f"{argument['name']}: {argument['type']}{optional}"
