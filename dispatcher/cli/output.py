"""How the CLI prints: tables for people, never cut when piped; JSON for programs."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

#: Wide enough for any row we print; a pipe has no width of its own.
_UNBOUNDED = 10_000


def print_table(table: Table) -> None:
    """Print ``table``; when standard output is not a terminal, at its natural width.

    Piped output is read by programs and people alike, so no cell is cut or folded to fit the
    80 columns rich assumes for a pipe.
    """
    console = Console()
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
        console.width = max(console.width, natural)
    console.print(table)


def print_json(value: Any) -> None:
    """``value`` as indented JSON (dates as ISO 8601 text)."""
    click.echo(json.dumps(value, indent=2, default=_plain))


def _plain(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table."
)
