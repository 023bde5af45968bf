"""An action that gives no result in time says it may still run, with the task id to wait on."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from tests.dispatcher.cli.support import embedded_environment, run_cli


def test_a_timed_out_action_says_it_may_still_run_and_names_its_queued_task(
    tmp_path: Path,
) -> None:
    env = embedded_environment(tmp_path)
    assert run_cli(env, "db", "upgrade").returncode == 0
    organisation = run_cli(env, "orgs", "create", "Acme").stdout.strip()

    # No worker runs: the message waits in the broker.
    done = run_cli(env, "action", "create_user", "--org", organisation,
                   "--args", '{"name": "Ada"}', "--timeout", "0.5")  # fmt: skip
    assert done.returncode != 0
    assert "may still run" in done.stderr
    assert "may do it twice" in done.stderr
    found = re.search(r"`dispatcher result ([0-9a-f-]{36})`", done.stderr)
    assert found, done.stderr
    task_id = found.group(1)
    broker = sa.create_engine(f"sqlite:///{tmp_path / 'broker.sqlite3'}")
    with broker.connect() as connection:
        queued = connection.execute(sa.text("SELECT payload FROM kombu_message")).scalars().all()
    broker.dispose()
    assert [payload for payload in queued if task_id in payload], "the id names no queued task"

    waited = run_cli(env, "result", task_id, "--timeout", "0.5")
    assert waited.returncode != 0
    assert f"task {task_id} gave no result yet; it may still run" in waited.stderr
