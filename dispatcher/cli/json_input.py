"""JSON given on the command line (``--args``, ``--payload``, ``--credentials``, ...).

One parser for every option, so each says what is wrong the same way: the position of a syntax
error (never the text: it may be a secret), a value that is not an object, or nesting deeper than
Python's parser can follow (10,000 levels is a RecursionError inside ``json.loads``).
"""

from __future__ import annotations

import json
from typing import Any

import click


def json_object(option: str, text: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object, or a :class:`click.ClickException` naming ``option``."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{option} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise click.ClickException(f"{option} is nested too deeply") from None
    if not isinstance(value, dict):
        raise click.ClickException(f"{option} must be a JSON object")
    return value
