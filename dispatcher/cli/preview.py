"""``dispatcher preview``: one workflow step rendered for a subscriber, nothing sent or written."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import click
from pydantic import ValidationError

from dispatcher.cli.json_input import json_object
from dispatcher.notifications.events import InlineSubscriber
from dispatcher.notifications.preview import PreviewError, preview


@click.command("preview")
@click.argument("workflow")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option("--step", type=click.IntRange(min=0), default=0, show_default=True,
              help="The step's position, from 0.")  # fmt: skip
@click.option("--to", "recipient", required=True,
              help="Subscriber id, or a JSON inline subscriber.")  # fmt: skip
@click.option("--payload", default="{}", show_default=True, help="JSON object.")
def preview_command(workflow: str, organisation_id: str, step: int, recipient: str,
                    payload: str) -> None:  # fmt: skip
    """Render step N of WORKFLOW for a subscriber and a sample payload; prints JSON."""
    try:
        organisation = uuid.UUID(organisation_id)
    except ValueError:
        raise click.ClickException("--org is not a UUID") from None
    inline: InlineSubscriber | None = None
    if recipient.lstrip().startswith("{"):
        try:
            inline = InlineSubscriber.model_validate(json_object("--to", recipient))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise click.ClickException(f"--to.{where}: {first['msg']}") from None
    try:
        shown = preview(
            organisation, workflow, step, json_object("--payload", payload),
            subscriber_id=None if inline else recipient, subscriber=inline,
        )  # fmt: skip
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(asdict(shown), indent=2, ensure_ascii=False))
