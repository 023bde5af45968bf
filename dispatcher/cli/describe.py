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


def _public_name(name: str, info: FieldInfo) -> str:
    """The name an argument is documented under: the snake_case field name (camelCase aliases
    are generated for every field), unless the field declares a name of its own (``as``)."""
    if (info.alias_priority or 0) < 2:
        return name  # the alias, if any, is the generated camelCase one
    if isinstance(info.validation_alias, AliasChoices):
        declared = [item for item in info.validation_alias.choices if isinstance(item, str)]
        return declared[0] if declared else name
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return name


def describe_arguments(model: type[BaseModel]) -> list[dict[str, Any]]:
    """``[{"name", "type", "required"}]`` for every argument, in declaration order."""
    schema = model.model_json_schema(by_alias=False)
    properties: dict[str, Any] = schema.get("properties", {})
    definitions: dict[str, Any] = schema.get("$defs", {})
    described = []
    for name, info in model.model_fields.items():
        public = _public_name(name, info)
        tables = [marker.model.__tablename__ for marker in info.metadata if isinstance(marker, Ref)]
        text = describe_schema(properties.get(name, {}), definitions, next(iter(tables), None))
        described.append({"name": public, "type": text, "required": info.is_required()})
    return described


def describe_argument(argument: dict[str, Any]) -> str:
    """``prompt: text (optional)``."""
    optional = "" if argument["required"] else " (optional)"
    return f"{argument['name']}: {argument['type']}{optional}"
