"""The embedded key file lives with the SQLite database, and is never silently replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.dispatcher.cli.support import run_cli


def sqlite_environment(database_file: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_")}
    env["DISPATCHER_DATABASE_URL"] = f"sqlite:///{database_file}"
    return env


def test_the_key_lives_beside_the_database_and_a_lost_one_is_not_replaced(tmp_path: Path) -> None:
    database_file = tmp_path / "store" / "app.sqlite3"
    env = sqlite_environment(database_file)
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    for directory in (here, elsewhere, database_file.parent):
        directory.mkdir()

    assert run_cli(env, "db", "upgrade", cwd=here).returncode == 0
    organisation = run_cli(env, "orgs", "create", "Acme", cwd=here).stdout.strip()
    arguments = {"name": "Mail", "provider": "fake", "credentials": {"api_key": "SECRET-k-1"}}
    created = run_cli(env, "action", "create_integration", "--org", organisation, "--local",
                      "--args", json.dumps(arguments), cwd=here)  # fmt: skip
    assert created.returncode == 0, created.stderr
    integration = json.loads(created.stdout)["value"]

    key_file = database_file.parent / "encryption.key"
    assert key_file.exists()
    assert not (here / "var" / "encryption.key").exists()
    # Another process, started from another directory, reads the same key.
    checked = run_cli(env, "integrations", "test", integration, "--org", organisation,
                      cwd=elsewhere)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok:")

    key_file.unlink()
    refused = run_cli(env, "integrations", "test", integration, "--org", organisation, cwd=here)
    assert refused.returncode != 0
    assert f"the key file {key_file} is missing" in refused.stderr
    assert "restore that file" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not key_file.exists()


def test_a_new_database_gets_its_key_from_the_first_process_that_needs_one(
    tmp_path: Path,
) -> None:
    database_file = tmp_path / "fresh" / "app.sqlite3"
    env = sqlite_environment(database_file)
    # The database's directory need not exist yet.
    assert run_cli(env, "db", "upgrade", cwd=tmp_path).returncode == 0
    organisation = run_cli(env, "orgs", "create", "Acme", cwd=tmp_path).stdout.strip()
    created = run_cli(env, "action", "create_user", "--org", organisation, "--local",
                      "--args", '{"name": "Ada"}', cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert (database_file.parent / "encryption.key").stat().st_mode & 0o777 == 0o600
