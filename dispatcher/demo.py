"""``make run``: the main job on whatever stack is configured (embedded SQLite by default).

Migrates the database, creates a demo organisation, starts a worker, runs the ONE actions through
it, and prints what each returned.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from rich.console import Console
from rich.table import Table

from dispatcher.config import get_settings
from dispatcher.db import normalise_url
from dispatcher.organisations import create_organisation
from dispatcher.producer import enqueue_action
from dispatcher.results import Err, Ok, Result
from dispatcher.runtime import ensure_ready
from dispatcher.worker_process import running_worker
from models.migrate import upgrade


def run_demo(console: Console) -> None:
    settings = get_settings()
    settings.ensure_data_dir()
    ensure_ready()
    console.print(f"[bold]database[/] {settings.resolved_database_url.split('@')[-1]}")
    console.print(f"[bold]broker[/]   {settings.resolved_broker_url.split('@')[-1]}")
    upgrade(normalise_url(settings.resolved_database_url))
    organisation_id = create_organisation("Demo organisation")
    console.print(f"[bold]organisation[/] {organisation_id}")
    log_file = settings.data_dir / "demo-worker.log"
    table = Table("action", "result", "seconds")
    with running_worker(concurrency=2, log_file=log_file):
        results: dict[str, Any] = {}

        def call(name: str, arguments: dict[str, Any]) -> Any:
            started = time.perf_counter()
            result = enqueue_action(name, arguments, organisation_id=organisation_id).get(60)
            table.add_row(name, describe(result), f"{time.perf_counter() - started:.2f}")
            results[name] = result.value if isinstance(result, Ok) else None
            return results[name]

        with console.status("running actions on the worker..."):
            user = call("create_user", {"name": "Ada Lovelace", "email": "ada@example.com"})
            prompt = call("create_prompt", {"name": "tone", "content": "Be brief."})
            integration = call(
                "create_integration",
                {"name": "Demo email", "provider": "fake", "credentials": {"api_key": "demo"}},
            )
            tool = call(
                "create_tool",
                {"name": "send email", "action": "sendEmail", "integration_id": integration},
            )
            agent = call(
                "create_agent",
                {
                    "name": "Tutor", "description": "Teaches the course", "kind": "system_agent",
                    "created_by": user, "tools": [tool], "attached_prompts": [prompt],
                    "tags": ["demo"], "meta": {"source": "make run"},
                },
            )  # fmt: skip
            thread = call("create_agent_thread", {"title": "Welcome", "agent_id": agent})
            call("send_agent_message", {"thread_id": thread, "kind": "agent", "content": "Hi!"})
            flow = call("create_flow", {"name": "Onboarding", "steps": ["intro", "practice"]})
            call("assign_lesson", {"flow_id": flow, "step_name": "intro", "user_id": user})
            call(
                "update_flow_progress",
                {"flow_id": flow, "step_name": "intro", "user_id": user, "status": "Completed"},
            )
            # An id that names no row of this organisation: the worker answers an Err.
            call("create_agent_thread", {"title": "Orphan", "agent_id": str(uuid.uuid4())})
    console.print(table)
    console.print(f"worker log: {log_file}")


def describe(result: Result) -> str:
    if isinstance(result, Err):
        return f"[red]Err[/] {result.code}: {result.message}"
    return f"[green]Ok[/] {result.value}"
