"""A fetch step from the ``dispatcher`` command, on the embedded SQLite database (migration
0012 included): created by the ``create_workflow`` action, refused by field, previewed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.dispatcher.cli.support import run_cli

FETCH: dict[str, Any] = {"kind": "fetch", "config": {"url": "https://api.example.com/u/{{ subscriber.subscriber_id }}",
                                     "merge_key": "user"}}  # fmt: skip
EMAIL = {"kind": "email", "template": {"body": "Plan {{ payload.user.plan }}"}}


def test_a_fetch_step_from_the_command_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_")}
    env["DISPATCHER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    assert run_cli(env, "db", "upgrade", cwd=tmp_path).returncode == 0
    organisation = run_cli(env, "orgs", "create", "Acme", cwd=tmp_path).stdout.strip()

    def create(steps: list[Any]) -> subprocess.CompletedProcess[str]:
        arguments = {"key": "plan", "name": "Plan", "steps": steps}
        return run_cli(env, "action", "create_workflow", "--org", organisation, "--local",
                       "--args", json.dumps(arguments), cwd=tmp_path)  # fmt: skip

    bad = create([{"kind": "fetch", "config": {"url": FETCH["config"]["url"],
                                               "timeout_seconds": 600}}, EMAIL])  # fmt: skip
    assert "steps.0.config.timeout_seconds" in bad.stdout + bad.stderr
    made = create([FETCH, EMAIL])
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["ok"] is True

    shown = run_cli(env, "preview", "plan", "--org", organisation, "--step", "0",
                    "--to", json.dumps({"subscriber_id": "ada"}), cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert (answer["kind"], answer["content"]) == (
        "fetch", {"method": "GET", "url": "https://api.example.com/u/ada"},
    )  # fmt: skip
