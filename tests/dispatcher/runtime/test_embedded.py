"""The embedded default end to end: SQLite database, SQLite broker, a real worker, the CLI.

Everything runs in child processes with no DISPATCHER_ URL set, as on a fresh machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.dev.worker_process import running_worker

pytestmark = pytest.mark.worker


def embedded_environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_")}
    env["DISPATCHER_DATA_DIR"] = str(data_dir)
    return env


def cli(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *arguments],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def action(env: dict[str, str], organisation: str, name: str, arguments: dict[str, Any]) -> Any:
    done = cli(
        env,
        "action",
        name,
        "--org",
        organisation,
        "--args",
        json.dumps(arguments),
        "--timeout",
        "60",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True, result
    return result["value"]


def test_four_actions_on_sqlite_with_the_sqlite_broker(tmp_path: Path) -> None:
    env = embedded_environment(tmp_path)
    assert cli(env, "db", "upgrade").returncode == 0
    created = cli(env, "orgs", "create", "Acme")
    assert created.returncode == 0, created.stderr
    organisation = created.stdout.strip()
    uuid.UUID(organisation)
    # Before any worker runs, an action times out; it runs once a worker comes.
    early = cli(env, "action", "create_user", "--org", organisation, "--args",
                json.dumps({"name": "Early"}), "--timeout", "0.5")  # fmt: skip
    assert early.returncode == 1
    found = re.search(r"`dispatcher result ([0-9a-f-]{36})`", early.stderr)
    assert found, early.stderr

    with running_worker(environment=env, log_file=tmp_path / "worker.log", concurrency=1):
        late = cli(env, "result", found.group(1), "--timeout", "60")
        assert late.returncode == 0, late.stdout + late.stderr
        assert json.loads(late.stdout)["ok"] is True
        user = action(env, organisation, "create_user", {"name": "Ada"})
        agent = action(env, organisation, "create_agent",
                       {"name": "Tutor", "description": "d", "kind": "system_agent",
                        "created_by": user, "tags": ["x"], "meta": {"k": "v"}})  # fmt: skip
        thread = action(env, organisation, "create_agent_thread", {"agent_id": agent})
        message = action(env, organisation, "send_agent_message",
                         {"thread_id": thread, "kind": "agent", "content": "hi",
                          "tool_call": {"name": "t"}})  # fmt: skip
        flow = action(env, organisation, "create_flow", {"name": "F"})
        lesson = action(env, organisation, "assign_lesson", {"flow_id": flow, "user_id": user})
        progress = action(env, organisation, "update_flow_progress",
                          {"flow_id": flow, "step_name": "a", "agent_id": agent, "status": "Blocked"})  # fmt: skip

        missing = cli(env, "action", "send_agent_message", "--org", organisation, "--args",
                      json.dumps({"thread_id": str(uuid.uuid4()), "kind": "user", "content": "x"}))  # fmt: skip
        assert missing.returncode == 1
        assert json.loads(missing.stdout)["code"] == "not_found"
        assert "thread_id" in json.loads(missing.stdout)["message"]

    refused = cli(env, "action", "create_agent", "--org", organisation, "--args",
                  json.dumps({"name": "A", "description": "", "kind": "robot"}))  # fmt: skip
    assert refused.returncode == 1
    assert "kind" in refused.stderr

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dispatcher.sqlite3'}")
    with engine.connect() as connection:

        def one(sql: str, row_id: str) -> Any:
            return connection.execute(sa.text(sql), {"id": row_id.replace("-", "")}).one()

        assert one("SELECT name, kind, meta FROM agents WHERE id = :id", agent) == (
            "Tutor", "system_agent", '{"k": "v"}')  # fmt: skip
        assert one("SELECT content, kind FROM agent_messages WHERE id = :id", message) == (
            "hi",
            "agent",
        )
        assert one("SELECT assigned_at IS NOT NULL FROM lessons WHERE id = :id", lesson) == (1,)
        assert one("SELECT status FROM flow_progress WHERE id = :id", progress) == ("Blocked",)
    engine.dispose()


def test_action_list_names_every_action_and_its_arguments(tmp_path: Path) -> None:
    done = cli(embedded_environment(tmp_path), "action", "--list")
    assert done.returncode == 0, done.stderr
    for name in ("create_agent", "assign_lesson", "send_agent_message", "update_flow_progress",
                 "create_integration", "create_subscriber", "create_workflow", "grant_access"):  # fmt: skip
        assert name in done.stdout
    assert "delegates_to: list of ids of agents (optional)" in done.stdout
