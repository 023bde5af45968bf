"""``dispatcher inbox-secret`` and ``dispatcher inbox-origins``: an organisation's browser inbox."""

from __future__ import annotations

from datetime import timedelta

import click

from dispatcher.api.inbox.secrets import rotate, set_origins
from dispatcher.cli.api import _organisation
from dispatcher.cli.output import json_option, print_json


@click.group("inbox-secret")
def inbox_secret() -> None:
    """The secret an application signs its subscribers' ids with for the browser inbox."""


@inbox_secret.command("rotate")
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
@click.option(
    "--overlap-minutes",
    type=click.IntRange(min=0),
    default=60,
    show_default=True,
    help="Minutes the previous secret stays valid.",
)
@json_option
def inbox_secret_rotate(organisation_id: str, overlap_minutes: int, as_json: bool) -> None:
    """Make a new secret and print it with the application identifier; it is shown this once."""
    try:
        rotated = rotate(_organisation(organisation_id), timedelta(minutes=overlap_minutes))
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    until = rotated.previous_valid_until
    answer = {
        "application_identifier": rotated.application_identifier,
        "secret": rotated.secret,
        "previous_valid_until": until.isoformat(timespec="seconds") if until else None,
    }
    if as_json:
        print_json(answer)
        return
    for name, value in answer.items():
        click.echo(f"{name}: {value if value is not None else '-'}")


@click.command("inbox-origins")
@click.argument("origins", nargs=-1)
@click.option("--org", "organisation_id", required=True, help="Organisation id.")
def inbox_origins(origins: tuple[str, ...], organisation_id: str) -> None:
    """Set the origins (https://app.example.com) whose pages may call the inbox; none: no page."""
    try:
        keys = set_origins(_organisation(organisation_id), list(origins))
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(", ".join(keys.cors_origins) or "no origin allowed")
