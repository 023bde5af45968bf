"""``make run``: the main job on whatever stack is configured (embedded SQLite by default).

Migrates the database, starts a local fake provider, a worker and beat, creates a demo
organisation with two integrations per channel (each primary fails some of its requests), runs
the ONE actions, triggers a workflow (a fetch step whose answer the fake server gives, then one
step per channel) to a few hundred subscribers with a live progress bar, and
prints what happened per channel and integration. It also serves the HTTP API (``dispatcher
api``), sends one trigger through it, and prints an API key and a ``curl`` line; from a terminal
the API, worker and beat then keep running until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, insert, select

from dispatcher.config import get_settings, reset_settings
from dispatcher.dev.api_process import running_api
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.dev.worker_process import running_beat, running_worker
from dispatcher.notifications.triggers import trigger_bulk
from dispatcher.organisations import create_organisation
from dispatcher.producer import enqueue_action, run_action
from dispatcher.results import Err, Ok, Result
from dispatcher.runtime.db import normalise_url
from dispatcher.runtime.resources import database, ensure_ready
from models import (
    TERMINAL_DELIVERY_STATUSES,
    AttemptOutcome,
    ChannelType,
    Delivery,
    DeliveryAttempt,
    Integration,
    Subscriber,
)
from models.migrate import upgrade

SUBSCRIBERS = 300
#: Attempt outcomes after which a delivery is tried again.
RESENT = frozenset({AttemptOutcome.RETRYABLE, AttemptOutcome.AMBIGUOUS})
CHANNELS = tuple(ChannelType)
#: How each channel's primary integration misbehaves; the secondary always answers.
PRIMARY_FAULTS: dict[str, dict[str, Any]] = {
    "email": {"fail_ratio": 0.2},  # transient 500s: retried, some fall back
    "sms": {"script": ["401"] * 40},  # bad credentials for a while: immediate fallback
    "chat": {"script": ["429"] * 30, "retry_after": 1},  # rate limited: held 1 s, falls back
    "push": {"fail_ratio": 0.1},
    "webhook": {"script": ["invalid"] * 5},  # a few invalid recipients: failed, not retried
}
DEMO_ENVIRONMENT = {
    "DISPATCHER_URL_ALLOWLIST": "127.0.0.1",
    "DISPATCHER_RETRY_BASE_DELAY": "0.5",
    "DISPATCHER_RETRY_MAX_DELAY": "2",
    "DISPATCHER_SWEEP_INTERVAL": "1",
    "DISPATCHER_ENQUEUE_LEASE": "10",
}


def run_demo(console: Console) -> None:
    for key, value in DEMO_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    reset_settings()
    settings = get_settings()
    settings.ensure_data_dir()
    ensure_ready()
    console.print(f"[bold]database[/] {_safe(settings.resolved_database_url)}")
    console.print(f"[bold]broker[/]   {_safe(settings.resolved_broker_url)}")
    upgrade(normalise_url(settings.resolved_database_url))
    fake = FakeProviderServer().start()
    console.print(f"[bold]fake provider[/] {fake.url}")
    organisation_id = create_organisation("Demo organisation")
    console.print(f"[bold]organisation[/] {organisation_id}")
    log_file = settings.data_dir / "demo-worker.log"
    port = _port(settings.api_host, settings.api_port)
    try:
        with (
            running_worker(concurrency=2, log_file=log_file),
            running_beat(
                schedule_file=settings.data_dir / "beat-schedule",
                log_file=settings.data_dir / "demo-beat.log",
            ),
            running_api(
                host=settings.api_host, port=port, log_file=settings.data_dir / "demo-api.log"
            ),
        ):
            console.print(actions_table(organisation_id))
            transaction = notify(console, organisation_id, fake)
            console.print(summary_table(organisation_id))
            console.print(f"transaction {transaction}; worker log: {log_file}")
            console.print(f"inspect it: dispatcher status {transaction} --org {organisation_id}")
            show_api(console, organisation_id, f"http://{settings.api_host}:{port}")
            if sys.stdin.isatty():
                console.print("the API, worker and beat keep running; Ctrl-C stops them")
                _wait_for_interrupt()
    finally:
        fake.stop()


def _port(host: str, preferred: int) -> int:
    """The configured API port, or a free one when something else listens there."""
    with socket.socket() as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def show_api(console: Console, organisation_id: uuid.UUID, url: str) -> None:
    """A key for the demo organisation, one trigger sent through the API, and the curl line."""
    key = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "dispatcher.cli", "api-keys", "create",
         "--org", str(organisation_id), "--name", "demo"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    body = {"name": "welcome", "to": "user-1", "payload": {"code": "4242"}}
    answer = httpx.post(
        f"{url}/v1/events/trigger",
        headers={"Authorization": f"ApiKey {key}"},
        json=body,
        timeout=10,
    )
    console.print(f"[bold]HTTP API[/] {url} (docs {url}/docs): POST /v1/events/trigger -> "
                  f"{answer.status_code} {answer.text}")  # fmt: skip
    console.print(f"[bold]API key[/] {key}")
    console.print(
        f"curl -X POST {url}/v1/events/trigger -H 'Authorization: ApiKey {key}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}",
        soft_wrap=True,
        markup=False,
    )
    if get_settings().inbox_example:
        rotated = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "dispatcher.cli", "inbox-secret", "rotate",
             "--org", str(organisation_id), "--json"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        application = json.loads(rotated)["application_identifier"]
        console.print(
            f"[bold]inbox[/] {url}/inbox/example?applicationIdentifier={application}"
            "&subscriberId=user-1",
            soft_wrap=True,
        )


def _safe(url: str) -> str:
    return url.rsplit("@", maxsplit=1)[-1]


def actions_table(organisation_id: uuid.UUID) -> Table:
    table = Table("action", "result", "seconds", title="ONE actions on the worker")

    def call(name: str, arguments: dict[str, Any]) -> Any:
        started = time.perf_counter()
        result = enqueue_action(name, arguments, organisation_id=organisation_id).get(60)
        table.add_row(name, describe(result), f"{time.perf_counter() - started:.2f}")
        return result.value if isinstance(result, Ok) else None

    user = call("create_user", {"name": "Ada Lovelace", "email": "ada@example.com"})
    prompt = call("create_prompt", {"name": "tone", "content": "Be brief."})
    tool = call("create_tool", {"name": "search", "action": "webSearch"})
    agent = call(
        "create_agent",
        {
            "name": "Tutor",
            "description": "Teaches the course",
            "kind": "system_agent",
            "created_by": user,
            "tools": [tool],
            "attached_prompts": [prompt],
            "tags": ["demo"],
        },
    )
    thread = call("create_agent_thread", {"title": "Welcome", "agent_id": agent})
    call("send_agent_message", {"thread_id": thread, "kind": "agent", "content": "Hi!"})
    flow = call("create_flow", {"name": "Onboarding", "steps": ["intro", "practice"]})
    call("assign_lesson", {"flow_id": flow, "step_name": "intro", "user_id": user})
    call(
        "update_flow_progress",
        {"flow_id": flow, "step_name": "intro", "user_id": user, "status": "Completed"},
    )
    # An id that names no row of this organisation: the worker answers an Err, not a crash.
    call("create_agent_thread", {"title": "Orphan", "agent_id": str(uuid.uuid4())})
    return table


def notify(console: Console, organisation_id: uuid.UUID, fake: FakeProviderServer) -> str:
    for channel in CHANNELS:
        if channel is ChannelType.IN_APP:
            continue
        for position, name in enumerate(("primary", "secondary")):
            path = f"{channel}-{name}"
            fake.configure(path, **(PRIMARY_FAULTS.get(channel, {}) if position == 0 else {}))
            run_action(
                "create_integration",
                {
                    "name": f"{channel} {name}",
                    "provider": "fake_http",
                    "channel_type": channel,
                    "credentials": {"api_key": f"demo-{channel}-{name}"},
                    "settings": {"url": f"{fake.url}/{path}"},
                    "is_primary": position == 0,
                    "priority": position,
                },
                organisation_id=organisation_id,
            )
    # A fetch step first: each subscriber's account, answered by the fake server (which the
    # demo's URL allow-list lets the worker reach, like the fake providers), is merged into the
    # payload under "account" for the channel steps' templates. Its first answers are 500s:
    # those fetches are retried like sends.
    fake.configure("accounts", answer_json={"plan": "gold"}, script=["500"] * 20)
    fetch = {
        "kind": "fetch",
        "config": {
            "url": f"{fake.url}/accounts?user={{{{ subscriber.subscriber_id }}}}",
            "merge_key": "account",
        },
    }
    # The organisation's default email layout wraps every email (its text part is derived).
    run_action(
        "create_layout",
        {"key": "brand", "name": "Brand", "default": True,
         "html": "<h1>Demo Ltd</h1><div>{{ body }}</div><small>{{ footer }}</small>",
         "footer": "You get this because you signed up for the demo."},
        organisation_id=organisation_id,
    )  # fmt: skip
    # At most 3 welcomes per subscriber an hour: this one, the API's below and the printed curl
    # line's go out, later ones are skipped as throttled. The text is German for subscribers
    # whose locale is de (the rest get the step's own English).
    throttle = {"kind": "throttle", "config": {"limit": 3, "window": 3600}}
    steps = [fetch, throttle] + [
        {
            "kind": channel,
            "template": {
                "subject": "Hello {{ subscriber.first_name }}",
                "title": "Hello",
                "body": "Your code is {{ payload.code }} ({{ payload.account.plan }} plan)",
            },
            "config": {"translations": {"de": {
                "subject": "Hallo {{ subscriber.first_name }}", "title": "Hallo",
                "body": "Ihr Code ist {{ payload.code }} ({{ payload.account.plan }})",
            }}},
        }
        for channel in CHANNELS
    ]  # fmt: skip
    run_action(
        "create_workflow",
        {"key": "welcome", "name": "Welcome", "steps": steps},
        organisation_id=organisation_id,
    )
    with database().transaction() as session:
        session.execute(
            insert(Subscriber),
            [
                {
                    "id": uuid.uuid4(),
                    "organisation_id": organisation_id,
                    "external_id": f"user-{n}",
                    "first_name": f"User {n}",
                    "email": f"user{n}@example.com",
                    "phone": f"+4477009{n:05d}",
                    "locale": "de" if n % 3 == 0 else "en",
                    "data": {},
                    "meta": {},
                    "channels": {
                        "push": {"device_tokens": [f"token-{n}"]},
                        "chat": {"chat_id": f"C{n:05d}"},
                    },
                }
                for n in range(SUBSCRIBERS)
            ],
        )
    receipt = trigger_bulk(
        organisation_id,
        [
            {
                "workflow": "welcome",
                "payload": {"code": "4242"},
                "to": [f"user-{n}" for n in range(SUBSCRIBERS)],
            }
        ],
    )[0]
    total = receipt.deliveries
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"delivering {total} messages", total=total)
        done = 0
        deadline = time.monotonic() + 300
        while done < total and time.monotonic() < deadline:
            time.sleep(0.3)
            done = terminal_count(organisation_id)
            progress.update(task, completed=done)
    return receipt.transaction_id


def terminal_count(organisation_id: uuid.UUID) -> int:
    with database().session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.organisation_id == organisation_id,
                    Delivery.status.in_(TERMINAL_DELIVERY_STATUSES),
                )
            )
            or 0
        )


def summary_table(organisation_id: uuid.UUID) -> Table:
    """Per channel and final integration: sent, retried, fell back, failed, and attempts."""
    with database().session() as session:
        names = dict(
            session.execute(
                select(Integration.id, Integration.name).where(
                    Integration.organisation_id == organisation_id
                )
            ).all()
        )
        deliveries = session.execute(
            select(
                Delivery.id,
                Delivery.channel_type,
                Delivery.step_kind,
                Delivery.status,
                Delivery.integration_id,
            ).where(Delivery.organisation_id == organisation_id)
        ).all()
        attempts = session.execute(
            select(
                DeliveryAttempt.delivery_id, DeliveryAttempt.integration_id, DeliveryAttempt.outcome
            ).where(DeliveryAttempt.organisation_id == organisation_id)
        ).all()
    tried: dict[uuid.UUID, list[tuple[uuid.UUID | None, AttemptOutcome]]] = defaultdict(list)
    for delivery_id, integration_id, attempt_outcome in attempts:
        tried[delivery_id].append((integration_id, attempt_outcome))
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for delivery_id, channel_type, step_kind, status, integration_id in deliveries:
        # A fetch step's delivery has no channel: it is shown by its kind.
        channel = channel_type.value if channel_type else step_kind.value
        history = tried.get(delivery_id, [])
        fallback_name = {ChannelType.IN_APP: "inbox", None: step_kind.value}.get(channel_type, "-")
        final = names.get(integration_id, fallback_name) if integration_id else fallback_name
        final = final.removeprefix(f"{channel} ")
        row = rows[(channel, final)]
        row[status.value] += 1
        row["retried"] += int(any(result in RESENT for _, result in history))
        row["fell back"] += int(len({integration for integration, _ in history}) > 1)
        row["attempts"] += len(history)
        row["failed attempts"] += sum(
            1 for _, result in history if result is not AttemptOutcome.SENT
        )
    table = Table(
        "channel",
        "via",
        "sent",
        "retried",
        "fell back",
        "failed",
        "attempts",
        "failed att.",
        title="Deliveries by channel and the integration that finished them",
    )
    for (channel, final), counts in sorted(rows.items()):
        table.add_row(
            channel,
            final,
            *(
                str(counts[key])
                for key in ("sent", "retried", "fell back", "failed", "attempts", "failed attempts")
            ),
        )
    return table


def describe(result: Result) -> str:
    if isinstance(result, Err):
        return f"[red]Err[/] {result.code}: {result.message}"
    return f"[green]Ok[/] {result.value}"
