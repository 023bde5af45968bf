"""``dispatcher integrations``: connect, list, test, promote and deactivate provider accounts.

Changes go through the integration actions (credentials travel sealed to the worker); ``list``
and ``test`` read the database in this process, always scoped to one organisation. Nothing here
prints a credential: listings leave them out and every message names fields, never values.
"""

from __future__ import annotations

import uuid
from typing import IO, Any, NoReturn

import click
from rich.table import Column, Table
from rich.text import Text
from sqlalchemy import select

from dispatcher.cli.json_input import json_object
from dispatcher.cli.output import json_option, print_json, print_table
from dispatcher.errors import ActionArgumentsError, DispatcherError
from dispatcher.producer import enqueue_action
from dispatcher.results import Err
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.sending.check import check_candidate
from dispatcher.sending.integrations import Candidate, load_candidate
from models import ChannelType, Integration, Organisation

CHANNELS = tuple(channel.value for channel in ChannelType)


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _arguments_error(error: ActionArgumentsError) -> str:
    lines = (
        f"  {item['field']}: {str(item['message']).removeprefix('Value error, ')}"
        for item in error.errors
    )
    return "invalid arguments:\n" + "\n".join(lines)


def _run(
    action: str, arguments: dict[str, Any], organisation_id: uuid.UUID, timeout: float | None
) -> Any:
    try:
        result = enqueue_action(action, arguments, organisation_id=organisation_id).get(timeout)
    except ActionArgumentsError as exc:
        fail(_arguments_error(exc))
    except DispatcherError as exc:
        fail(str(exc))
    if isinstance(result, Err):
        fail(f"{result.code}: {result.message}")
    return result.value


def _require_organisation(organisation_id: uuid.UUID) -> None:
    with database().session() as session:
        if session.get(Organisation, organisation_id) is None:
            fail(f"no organisation with id {organisation_id}")


org_option = click.option(
    "--org", "organisation_id", type=click.UUID, required=True, help="Organisation id."
)
timeout_option = click.option(
    "--timeout", type=float, default=None, help="Seconds to wait for the worker's result."
)


@click.group("integrations")
def integrations() -> None:
    """Provider integrations of an organisation."""


@integrations.command("add")
@org_option
@click.option("--provider", required=True, help="Provider name (see docs/providers.md).")
@click.option("--name", required=True, help="A name for this integration.")
@click.option("--channel", type=click.Choice(CHANNELS), help="Defaults to the provider's own.")
@click.option("--credentials", "credentials_json", help="Credentials as a JSON object.")
@click.option(
    "--credentials-file",
    type=click.File("r"),
    help="A file holding the credentials JSON object ('-' reads standard input).",
)
@click.option("--settings", "settings_json", default="{}", help="Settings as a JSON object.")
@click.option("--primary", is_flag=True, help="Make it the first integration tried.")
@click.option("--priority", type=click.IntRange(0, 1000), default=0, show_default=True)
@click.option("--environment", default="production", show_default=True)
@timeout_option
def add(
    *,
    organisation_id: uuid.UUID,
    provider: str,
    name: str,
    channel: str | None,
    credentials_json: str | None,
    credentials_file: IO[str] | None,
    settings_json: str,
    primary: bool,
    priority: int,
    environment: str,
    timeout: float | None,
) -> None:
    """Connect a provider account; prints its id.

    Credentials are validated against the provider's schema here, then travel sealed to a
    worker, which stores them encrypted.

    Prefer --credentials-file: a command line is visible to other users of the machine.
    """
    if credentials_json is not None and credentials_file is not None:
        fail("give --credentials or --credentials-file, not both")
    if credentials_file is not None:
        credentials = json_object("--credentials-file", credentials_file.read())
    elif credentials_json is not None:
        credentials = json_object("--credentials", credentials_json)
    else:
        credentials = {}
    arguments: dict[str, Any] = {
        "name": name,
        "provider": provider,
        "environment": environment,
        "credentials": credentials,
        "settings": json_object("--settings", settings_json),
        "is_primary": primary,
        "priority": priority,
    }
    if channel is not None:
        arguments["channel_type"] = channel
    click.echo(_run("create_integration", arguments, organisation_id, timeout))


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


@integrations.command("list")
@org_option
@json_option
def list_integrations(organisation_id: uuid.UUID, as_json: bool) -> None:
    """List integrations (never their credentials)."""
    _require_organisation(organisation_id)
    # Only these columns: the credentials are never read, let alone decrypted.
    columns = (
        Integration.id,
        Integration.name,
        Integration.provider,
        Integration.channel_type,
        Integration.environment,
        Integration.status,
        Integration.is_primary,
        Integration.priority,
    )
    with database().session() as session:
        rows = session.execute(
            select(*columns)
            .where(Integration.organisation_id == organisation_id)
            .order_by(
                Integration.channel_type,
                Integration.environment,
                # The order the dispatcher tries them in: primary, then ascending priority.
                Integration.is_primary.desc(),
                Integration.priority,
                Integration.created_at,
            )
        ).all()
    if as_json:
        print_json(
            [
                {
                    "id": str(row.id),
                    "name": row.name,
                    "provider": row.provider,
                    "channel": row.channel_type.value,
                    "environment": row.environment,
                    "status": row.status.value,
                    "is_primary": row.is_primary,
                    "priority": row.priority,
                }
                for row in rows
            ]
        )
        return
    # Ids are pasted into the other commands: never cut or folded, however narrow the terminal;
    # other cells fold rather than lose characters.
    headers = ("name", "provider", "channel", "environment", "status", "primary", "priority")
    table = Table(
        Column("id", min_width=36, no_wrap=True),
        *(Column(header, overflow="fold") for header in headers),
    )
    for row in rows:
        table.add_row(
            str(row.id),
            Text(row.name),
            Text(row.provider),
            row.channel_type.value,
            Text(row.environment),
            row.status.value,
            _yes(row.is_primary),
            str(row.priority),
        )
    print_table(table)
    if not rows:
        click.echo("no integrations")


def _candidate(organisation_id: uuid.UUID, integration_id: uuid.UUID) -> Candidate:
    try:
        ensure_ready()
        with database().session() as session:
            candidate = load_candidate(session, integration_id, organisation_id)
    except DispatcherError as exc:
        fail(f"cannot read the integration: {exc}")
    if candidate is None:
        fail(f"no integration {integration_id} in organisation {organisation_id}")
    return candidate


@integrations.command("test")
@click.argument("integration_id", type=click.UUID)
@org_option
def check_integration(integration_id: uuid.UUID, organisation_id: uuid.UUID) -> None:
    """Check an integration's credentials.

    Validates the stored credentials and settings against the provider's schema, refuses a
    destination the worker would refuse (DISPATCHER_URL_ALLOWLIST), and, where the provider's
    API has a harmless call for it, asks the provider. Exits 0 only when all are fine (a
    provider without such a call is checked by validation alone).
    """
    outcome = check_candidate(_candidate(organisation_id, integration_id))
    if not outcome.ok:
        fail(f"not ok: {outcome.detail}")
    click.echo(f"ok: {outcome.detail}")


@integrations.command("set-primary")
@click.argument("integration_id", type=click.UUID)
@org_option
@timeout_option
def set_primary(
    integration_id: uuid.UUID, organisation_id: uuid.UUID, timeout: float | None
) -> None:
    """Make an integration the first one tried.

    Only an active integration can be primary; it is primary for its channel and environment.
    """
    arguments = {"integration_id": str(integration_id)}
    click.echo(f"{_run('set_primary_integration', arguments, organisation_id, timeout)} is primary")


@integrations.command("deactivate")
@click.argument("integration_id", type=click.UUID)
@org_option
@timeout_option
def deactivate(
    integration_id: uuid.UUID, organisation_id: uuid.UUID, timeout: float | None
) -> None:
    """Stop sending through an integration.

    The integration stays stored, inactive and no longer primary.
    """
    arguments = {"integration_id": str(integration_id)}
    click.echo(f"{_run('deactivate_integration', arguments, organisation_id, timeout)} is inactive")
