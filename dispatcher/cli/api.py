"""``dispatcher api`` (serve the HTTP API) and ``dispatcher api-keys`` (its organisation keys)."""

from __future__ import annotations

import uuid

import click
from rich.table import Table

from dispatcher.api.keys import create_key, list_keys, revoke_key
from dispatcher.api.server import serve
from dispatcher.cli.output import json_option, print_json, print_table
from dispatcher.config import get_settings


def _organisation(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.ClickException("--org is not a UUID") from None


@click.command("api")
@click.option("--host", default=None, help="Address to listen on [DISPATCHER_API_HOST].")
@click.option("--port", type=int, default=None, help="Port [DISPATCHER_API_PORT].")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [DISPATCHER_API_WORKERS].",
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the Novu-compatible HTTP API (uvicorn)."""
    settings = get_settings()
    serve(host or settings.api_host, port or settings.api_port, workers or settings.api_workers)


@click.group("api-keys")
def api_keys() -> None:
    """API keys of organisations, for the HTTP API."""


@api_keys.command("create")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option("--name", required=True, help="What the key is for.")
def api_keys_create(organisation_id: str, name: str) -> None:
    """Create a key and print it: it is shown this once, only its digest is stored."""
    try:
        issued = create_key(_organisation(organisation_id), name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(issued.key)


@api_keys.command("list")
@click.option("--org", "organisation_id", default=None, help="Organisation id (else all).")
@json_option
def api_keys_list(organisation_id: str | None, as_json: bool) -> None:
    """List keys: prefix, name, created, last used, revoked."""
    organisation = _organisation(organisation_id) if organisation_id else None
    rows = [
        {
            "id": str(view.id),
            "organisation_id": str(view.organisation_id),
            "prefix": view.prefix,
            "name": view.name,
            "created_at": view.created_at.isoformat(timespec="seconds"),
            "last_used_at": view.last_used_at.isoformat(timespec="seconds")
            if view.last_used_at
            else None,
            "revoked_at": view.revoked_at.isoformat(timespec="seconds")
            if view.revoked_at
            else None,
        }
        for view in list_keys(organisation)
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("prefix", "name", "organisation", "created", "last used", "revoked")
    for row in rows:
        table.add_row(
            row["prefix"], row["name"], row["organisation_id"], row["created_at"],
            row["last_used_at"] or "-", row["revoked_at"] or "-",
        )  # fmt: skip
    print_table(table)


@api_keys.command("revoke")
@click.argument("key")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
def api_keys_revoke(key: str, organisation_id: str) -> None:
    """Revoke the key with this id or prefix; requests with it are refused from now on."""
    if revoke_key(_organisation(organisation_id), key) == 0:
        raise click.ClickException(f"no active key {key!r} in this organisation")
    click.echo("revoked")
