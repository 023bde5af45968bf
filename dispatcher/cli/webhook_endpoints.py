"""``dispatcher webhook-endpoints list|create|delete``: where an organisation's own application
receives its outbound webhook events."""

from __future__ import annotations

import uuid
from typing import Any

import click
from rich.table import Table

from dispatcher.cli.output import json_option, print_json, print_table
from dispatcher.lifecycle.webhooks import EVENT_TYPES, EndpointError, create, listed, remove


def _uuid(value: str, option: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.ClickException(f"{option} is not a UUID") from None


@click.group("webhook-endpoints")
def webhook_endpoints() -> None:
    """Outbound webhook endpoints (signed events of deliveries, reads and cancellations)."""


@webhook_endpoints.command("list")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@json_option
def endpoints_list(organisation_id: str, as_json: bool) -> None:
    """List endpoints, oldest first: id, url, event types, enabled (never the secret)."""
    rows: list[dict[str, Any]] = [
        {
            "id": str(view.id), "url": view.url, "event_types": view.event_types,
            "enabled": view.enabled, "created_at": view.created_at.isoformat(timespec="seconds"),
        }
        for view in listed(_uuid(organisation_id, "--org"))
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    table = Table("id", "url", "event types", "enabled", "created")
    for item in rows:
        table.add_row(item["id"], item["url"], ", ".join(item["event_types"]),
                      "yes" if item["enabled"] else "no", item["created_at"])  # fmt: skip
    print_table(table)


@webhook_endpoints.command("create")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option("--url", required=True, help="Where to post (http or https; guarded).")
@click.option(
    "--event", "event_types", multiple=True, required=True, type=click.Choice(EVENT_TYPES),
    help="An event type to receive (repeat the option for more).",
)  # fmt: skip
@json_option
def endpoints_create(
    organisation_id: str, url: str, event_types: tuple[str, ...], as_json: bool
) -> None:
    """Create an endpoint with a generated signing secret, printed this once."""
    try:
        view, secret = create(_uuid(organisation_id, "--org"), url=url, event_types=event_types)
    except EndpointError as exc:
        option = "--event" if exc.field == "eventTypes" else f"--{exc.field}"
        raise click.ClickException(f"{option}: {exc.message}") from None
    if as_json:
        print_json({"id": str(view.id), "url": view.url, "event_types": view.event_types,
                    "secret": secret})  # fmt: skip
        return
    click.echo(f"created {view.id}")
    click.echo(f"signing secret (shown once): {secret}")


@webhook_endpoints.command("delete")
@click.argument("endpoint_id")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
def endpoints_delete(endpoint_id: str, organisation_id: str) -> None:
    """Delete an endpoint and the events not yet posted to it."""
    if not remove(_uuid(organisation_id, "--org"), _uuid(endpoint_id, "ENDPOINT_ID")):
        raise click.ClickException(f"no webhook endpoint {endpoint_id} in this organisation")
    click.echo(f"deleted {endpoint_id}")
