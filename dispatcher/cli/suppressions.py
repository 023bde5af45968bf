"""``dispatcher suppressions list|lift``: the addresses an organisation no longer sends to."""

from __future__ import annotations

import uuid

import click
from rich.table import Table

from dispatcher.cli.output import json_option, print_json, print_table
from dispatcher.lifecycle.suppressions import lift, list_suppressions
from models import ChannelType


def _uuid(value: str, option: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.ClickException(f"{option} is not a UUID") from None


@click.group("suppressions")
def suppressions() -> None:
    """Suppressed addresses (hard bounces, complaints, invalid numbers)."""


@suppressions.command("list")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option("--channel", type=click.Choice(["email", "sms"]), default=None)
@click.option("--address", default=None, help="Only this address (any case for email).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def suppressions_list(
    organisation_id: str, channel: str | None, address: str | None, limit: int, as_json: bool
) -> None:
    """List suppressions, newest first: id, channel, address, reason, created."""
    rows = list_suppressions(
        _uuid(organisation_id, "--org"),
        channel=ChannelType(channel) if channel else None,
        address=address,
        limit=limit,
    )
    listed = [
        {
            "id": str(row.id), "channel": row.channel_type.value, "address": row.address,
            "reason": row.reason, "created_at": row.created_at.isoformat(timespec="seconds"),
            "source_delivery_id": str(row.source_delivery_id) if row.source_delivery_id else None,
        }
        for row in rows
    ]  # fmt: skip
    if as_json:
        print_json(listed)
        return
    table = Table("id", "channel", "address", "reason", "created")
    for item in listed:
        table.add_row(item["id"], item["channel"], item["address"], item["reason"],
                      item["created_at"])  # fmt: skip
    print_table(table)


@suppressions.command("lift")
@click.argument("suppression_id")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
def suppressions_lift(suppression_id: str, organisation_id: str) -> None:
    """Lift a suppression: the address is sent to again."""
    if not lift(_uuid(organisation_id, "--org"), _uuid(suppression_id, "SUPPRESSION_ID")):
        raise click.ClickException(f"no suppression {suppression_id} in this organisation")
    click.echo(f"lifted {suppression_id}")
