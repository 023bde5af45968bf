"""A database that was never migrated, or is behind, is one line naming the fix, no traceback."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from tests.dispatcher.cli.support import embedded_environment, run_cli

HINT = "the database has no schema (or is behind): run `dispatcher db upgrade`"


def assert_hint(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0
    assert HINT in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_every_command_on_a_database_never_migrated_says_to_run_db_upgrade(
    tmp_path: Path,
) -> None:
    env = embedded_environment(tmp_path)
    org = str(uuid.uuid4())
    for command in (
        ["orgs", "list"],
        ["orgs", "create", "Acme"],
        ["integrations", "list", "--org", org],
        ["status", "tx-1", "--org", org],
        ["trigger", "welcome", "--org", org, "--to", "user-42"],
        ["action", "create_user", "--org", org, "--args", '{"name": "Ada"}', "--timeout", "5"],
        ["action", "create_user", "--org", org, "--args", '{"name": "Ada"}', "--local"],
    ):
        assert_hint(run_cli(env, *command))


def test_a_database_behind_the_latest_migration_says_to_run_db_upgrade(tmp_path: Path) -> None:
    env = embedded_environment(tmp_path)
    assert run_cli(env, "db", "upgrade", "--revision", "0001").returncode == 0
    behind = run_cli(env, "orgs", "create", "Acme")
    assert_hint(behind)
    assert "at 0001" in behind.stderr

    assert run_cli(env, "db", "upgrade").returncode == 0
    created = run_cli(env, "orgs", "create", "Acme")
    assert created.returncode == 0, created.stderr
    uuid.UUID(created.stdout.strip())
