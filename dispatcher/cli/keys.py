"""``dispatcher keys rotate``: re-encrypt every stored credential with the newest key."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dispatcher.errors import ConfigurationError
from dispatcher.runtime.keys import rotate_credentials
from dispatcher.runtime.resources import database, ensure_ready
from models import KeyRingError, credential_keys


@click.command("rotate")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Credentials re-encrypted per transaction.",
)
def rotate(batch_size: int) -> None:
    """Re-encrypt every stored credential with the first key of DISPATCHER_ENCRYPTION_KEYS.

    Put the new key first, restart the workers, run this, then drop the old key. Safe to run
    while workers are sending, and to run again after an interruption.
    """
    try:
        ensure_ready()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    if credential_keys.key_count == 1:
        click.echo("only one key is configured: credentials are re-encrypted with it", err=True)
    columns = (
        TextColumn("re-encrypting credentials"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("rotate", total=None)

        def advance(examined: int, total: int) -> None:
            bar.update(task, completed=examined, total=max(total, examined))

        try:
            count = rotate_credentials(database(), batch_size=batch_size, progress=advance)
        except KeyRingError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"re-encrypted {count} credential(s) with the first key")
