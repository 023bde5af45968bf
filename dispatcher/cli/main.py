"""The ``dispatcher`` command: database, organisations, actions, keys, the HTTP API, and the
demo."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from dispatcher.actions import catalogue
from dispatcher.cli.api import api, api_keys
from dispatcher.cli.describe import describe_argument, describe_arguments
from dispatcher.cli.inbox import inbox_origins, inbox_secret
from dispatcher.cli.integrations import integrations
from dispatcher.cli.json_input import json_object
from dispatcher.cli.keys import rotate
from dispatcher.cli.output import json_option, print_json, print_table
from dispatcher.cli.preview import preview_command
from dispatcher.cli.suppressions import suppressions
from dispatcher.cli.webhook_endpoints import webhook_endpoints
from dispatcher.config import get_settings
from dispatcher.dev.demo import run_demo
from dispatcher.errors import ActionTimeoutError, ConfigurationError, DispatcherError
from dispatcher.notifications.status import transaction_status
from dispatcher.notifications.triggers import trigger
from dispatcher.organisations import create_organisation, list_organisations
from dispatcher.producer import ActionHandle, enqueue_action, run_action
from dispatcher.results import Err, Result, to_wire
from dispatcher.runtime.db import normalise_url
from dispatcher.runtime.resources import database
from models import generate_key
from models.migrate import upgrade

console = Console()


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


class DispatcherGroup(click.Group):
    """Settings and schema problems end any command with their one-line fix, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=DispatcherGroup)
def main() -> None:
    """Notification and action dispatcher."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to the configured database."""
    settings = get_settings()
    settings.ensure_data_dir()
    upgrade(normalise_url(settings.resolved_database_url), revision)
    click.echo(f"database at revision {revision}")


@main.group()
def orgs() -> None:
    """Organisations (tenants)."""


@orgs.command("create")
@click.argument("name")
@click.option("--slug", default=None, help="URL-safe identifier; derived from NAME if omitted.")
def orgs_create(name: str, slug: str | None) -> None:
    """Create an organisation and print its id."""
    try:
        click.echo(str(create_organisation(name, slug)))
    except ValueError as exc:
        fail(str(exc))


@orgs.command("list")
@json_option
def orgs_list(as_json: bool) -> None:
    """List organisations."""
    rows = [
        {
            "id": str(organisation.id),
            "name": organisation.name,
            "slug": organisation.slug,
            "created_at": organisation.created_at.isoformat(timespec="seconds"),
        }
        for organisation in list_organisations()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "slug", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], row["slug"], row["created_at"])
    print_table(table)


def print_catalogue(as_json: bool) -> None:
    entries: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "description": spec.description,
            "arguments": describe_arguments(spec.args_model),
        }
        for spec in catalogue
    ]
    if as_json:
        print_json(entries)
        return
    table = Table("action", "arguments", "description", show_lines=True)
    for entry in entries:
        arguments = "\n".join(describe_argument(item) for item in entry["arguments"])
        table.add_row(entry["name"], arguments, entry["description"])
    print_table(table)


def print_result(result: Result) -> None:
    click.echo(json.dumps(to_wire(result), indent=2, default=str))
    if isinstance(result, Err):
        sys.exit(1)


@main.command("action")
@click.argument("name", required=False)
@click.option("--org", "organisation_id", help="Organisation id.")
@click.option("--args", "arguments", default="{}", show_default=True, help="JSON object.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the result.")
@click.option("--local", is_flag=True, help="Run in this process instead of on a worker.")
@click.option("--list", "list_actions", is_flag=True, help="List the actions and arguments.")
@json_option
def action(
    *,
    name: str | None,
    organisation_id: str | None,
    arguments: str,
    timeout: float | None,
    local: bool,
    list_actions: bool,
    as_json: bool,
) -> None:
    """Enqueue action NAME for an organisation, wait for it and print its result (JSON).

    With --list, the actions and their arguments (--json: as JSON).
    """
    if list_actions:
        print_catalogue(as_json)
        return
    if not name:
        fail("give an action NAME, or --list to see them")
    if not organisation_id:
        fail("--org is required")
    parsed = json_object("--args", arguments)
    try:
        # The worker would meet an unmigrated database too; say so here, not after a timeout.
        database()
        if local:
            result = run_action(name, parsed, organisation_id=organisation_id)
        else:
            result = enqueue_action(name, parsed, organisation_id=organisation_id).get(timeout)
    except ActionTimeoutError as exc:
        fail(_still_running(exc))
    except DispatcherError as exc:
        fail(str(exc))
    print_result(result)


def _still_running(exc: ActionTimeoutError) -> str:
    return (
        f"action {exc.action!r} gave no result in time, but it may still run: running the "
        f"command again may do it twice. Task id {exc.task_id}; wait for its result with "
        f"`dispatcher result {exc.task_id}`. Is a worker consuming the actions queue?"
    )


@main.command("result")
@click.argument("task_id")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for the result.")
def result_command(task_id: str, timeout: float | None) -> None:
    """Wait for the result of an enqueued action, by the task id it was given."""
    try:
        result = ActionHandle("(by task id)", task_id).get(timeout)
    except ActionTimeoutError as exc:
        fail(f"task {exc.task_id} gave no result yet; it may still run: ask again later")
    print_result(result)


@main.command("trigger")
@click.argument("workflow")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    required=True,
    help='Subscriber id, or a JSON inline subscriber / {"topic": key}; repeatable.',
)
@click.option("--payload", default="{}", show_default=True, help="JSON object.")
@click.option("--transaction-id", default=None, help="Idempotency key; generated if omitted.")
def trigger_command(
    workflow: str, organisation_id: str, recipients: tuple[str, ...], payload: str,
    transaction_id: str | None,
) -> None:  # fmt: skip
    """Trigger WORKFLOW for subscribers; prints the receipt."""
    targets = [_target(item) for item in recipients]
    try:
        receipt = trigger(
            organisation_id, workflow, targets, json_object("--payload", payload),
            transaction_id=transaction_id,
        )  # fmt: skip
    except DispatcherError as exc:
        fail(str(exc))
    click.echo(json.dumps(asdict(receipt), indent=2))


def _target(text: str) -> Any:
    return json_object("--to", text) if text.lstrip().startswith("{") else text


@main.command("status")
@click.argument("transaction_id")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@json_option
def status_command(transaction_id: str, organisation_id: str, as_json: bool) -> None:
    """Show every delivery of a transaction: channel, integration, status, attempts, error, and
    what the provider reported since (``delivered``, ``opened``, ...) with its events."""
    try:
        organisation = uuid.UUID(organisation_id)
    except ValueError:
        fail("--org is not a UUID")
    views = transaction_status(organisation, transaction_id)
    if not views:
        fail(f"no transaction {transaction_id!r} in this organisation")
    if as_json:
        print_json([asdict(view) for view in views])
        return
    table = Table("subscriber", "step", "channel", "integration", "provider", "status",
                  "attempts", "last error", "reported", "events")  # fmt: skip
    for view in views:
        table.add_row(
            view.subscriber, str(view.step), view.channel, view.integration or "-",
            view.provider or "-", view.status, str(view.attempts), view.last_error or "",
            view.reported_status or "-", ", ".join(event.kind for event in view.events),
        )  # fmt: skip
    print_table(table)


@main.group()
def keys() -> None:
    """Credential encryption keys."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key for DISPATCHER_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@main.command("demo")
def demo() -> None:
    """Run the demo on the configured stack (embedded SQLite by default)."""
    run_demo(console)


main.add_command(integrations)
main.add_command(api)
main.add_command(api_keys)
main.add_command(suppressions)
main.add_command(webhook_endpoints)
main.add_command(inbox_secret)
main.add_command(inbox_origins)
main.add_command(preview_command)
keys.add_command(rotate)

if __name__ == "__main__":
    main()
