"""Flower against a real worker: task names and states, workers, Prometheus metrics, no secrets.

The session worker runs first; Flower starts after it (headless, on loopback, not persistent) and
follows the worker's events. An integration is created through the worker with a recognisable
credential, a notification is sent through it to the local fake provider, and then every Flower
answer read here is searched for that credential and for the encryption key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import Ok, create_organisation, enqueue_action, trigger
from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.dev.worker_process import stop_worker
from tests.conftest import free_port
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, wait_until_terminal, workflow

SECRET = f"SECRET-flower-{uuid.uuid4().hex[:6]}"
T = TypeVar("T")


#: Seconds Flower may take to show what the worker reported. In whole-suite runs (the session
#: worker busy with what earlier tests left, every producer sending task-sent events) Flower
#: showed a task's success more than 30 s after the worker ran it; alone, within a second.
FLOWER_LAG = 120.0


def wait_for(check: Callable[[], T | None], what: str, log: Path, timeout: float = FLOWER_LAG) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout}s; Flower's log:\n{log.read_text()[-3000:]}")


class Flower:
    """A running Flower and every answer it gave, for the secret check."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self.answers: dict[str, str] = {}

    def get(self, path: str) -> httpx.Response:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        response = httpx.get(f"{self.url}{path}", timeout=10)
        self.answers[path] = response.text
        return response

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.json()


@pytest.fixture(scope="module")
def flower(worker: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flower]:
    """``celery -A dispatcher flower`` started after the worker (it follows the worker's
    events from then on), on loopback."""
    directory = tmp_path_factory.mktemp("flower")
    log = directory / "flower.log"
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    # Flower 2 answers its API only with authentication or with this explicit opt-out.
    environment["FLOWER_UNAUTHENTICATED_API"] = "true"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dispatcher", "flower",
             f"--port={port}", "--address=127.0.0.1", "--persistent=False",
             "--inspect_timeout=5000"],
            cwd=directory,  # no flowerconfig.py is picked up from the working directory
            env=environment, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    running = Flower(f"http://127.0.0.1:{port}", process, log)

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{running.url}/healthcheck", timeout=2).text == "OK"
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, "Flower did not answer /healthcheck", log)
        yield running
    finally:
        stop_worker(process)


@pytest.fixture(scope="module")
def traffic(flower: Flower, fake_provider: FakeProviderServer, postgres_url: str) -> dict[str, str]:
    """An integration created on the worker with a secret credential, and one email sent
    through it; answers the ids of the action task and of the delivery."""
    organisation = create_organisation(f"Flower {uuid.uuid4().hex[:6]}")
    path = f"{organisation.hex[:12]}-flower"
    fake_provider.configure(path)
    handle = enqueue_action(
        "create_integration",
        {
            "name": "flower-primary", "provider": "fake_http", "channel_type": "email",
            "credentials": {"api_key": SECRET}, "settings": {"url": f"{fake_provider.url}/{path}"},
            "is_primary": True,
        },
        organisation_id=organisation,
    )  # fmt: skip
    assert isinstance(handle.get(timeout=30), Ok)
    subscriber(organisation, "ada", first_name="Ada")
    workflow(organisation, "flower-code", [EMAIL_STEP])
    receipt = trigger(organisation, "flower-code", "ada", {"code": "4242"})
    [view] = wait_until_terminal(organisation, receipt.transaction_id)
    # The worker opened the credential and the provider accepted it.
    assert (view.status, view.integration) == ("sent", "flower-primary")
    return {"action_task": handle.id, "delivery": view.delivery_id}


def tasks_where(flower: Flower, name: str, matches: Callable[[dict[str, Any]], bool]) -> Any:
    tasks = flower.json(f"/api/tasks?taskname={name}")
    found = [task for task in tasks.values() if matches(task)]
    return found if found and all(task["state"] == "SUCCESS" for task in found) else None


def test_tasks_show_under_their_names_with_their_states(
    flower: Flower, traffic: dict[str, str]
) -> None:
    [action] = wait_for(
        lambda: tasks_where(
            flower, "action.create_integration", lambda t: t["uuid"] == traffic["action_task"]
        ),
        "create_integration did not show as SUCCESS",
        flower.log,
    )
    deliveries = wait_for(
        lambda: tasks_where(
            flower, "dispatcher.deliver", lambda t: traffic["delivery"] in (t["kwargs"] or "")
        ),
        "the deliver task did not show as SUCCESS",
        flower.log,
    )
    assert action["name"] == "action.create_integration"
    assert action["state"] == "SUCCESS"
    assert action["worker"]
    # Credentials travel sealed: Flower shows the token, never the value.
    assert "$sealed" in action["kwargs"]
    assert all(task["name"] == "dispatcher.deliver" for task in deliveries)
    assert any("'sent': 1" in (task["result"] or "") for task in deliveries)

    info = flower.json(f"/api/task/info/{traffic['action_task']}")
    assert (info["name"], info["state"]) == ("action.create_integration", "SUCCESS")
    assert "$sealed" in info["kwargs"]
    types = flower.json("/api/task/types")["task-types"]
    assert {"action.create_integration", "dispatcher.deliver"} <= set(types)

    # The dashboard's own pages for these tasks.
    assert flower.get(f"/task/{traffic['action_task']}").status_code == 200
    assert flower.get(f"/task/{deliveries[0]['uuid']}").status_code == 200
    assert flower.get("/tasks").status_code == 200


def test_the_worker_that_ran_them_is_listed_with_its_tasks(
    flower: Flower, traffic: dict[str, str]
) -> None:
    info = wait_for(
        lambda: (i := flower.json(f"/api/task/info/{traffic['action_task']}"))["worker"] and i,
        "the action task has no worker",
        flower.log,
    )
    name = info["worker"]

    def listed() -> dict[str, Any] | None:
        workers = flower.json(f"/api/workers?refresh=1&workername={name}")
        return workers.get(name) if workers.get(name, {}).get("registered") else None

    worker = wait_for(listed, f"Flower did not list {name} with its registered tasks", flower.log)
    assert {"action.create_integration", "dispatcher.deliver"} <= set(worker["registered"])
    queues = {queue["name"] for queue in worker["active_queues"]}
    assert os.environ["DISPATCHER_DELIVERY_QUEUE"] in queues
    assert flower.get(f"/worker/{name}").status_code == 200
    assert flower.get("/workers").status_code == 200


def test_prometheus_metrics_count_the_tasks_by_name(
    flower: Flower, traffic: dict[str, str]
) -> None:
    def succeeded() -> dict[str, float] | None:
        response = flower.get("/metrics")
        assert response.status_code == 200
        counts = {
            sample.labels["task"]: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == "flower_events_total" and sample.labels["type"] == "task-succeeded"
        }
        wanted = ("action.create_integration", "dispatcher.deliver")
        return counts if all(counts.get(name, 0) >= 1 for name in wanted) else None

    counts = wait_for(succeeded, "Flower's /metrics counted no task-succeeded events", flower.log)
    assert counts["action.create_integration"] >= 1
    assert counts["dispatcher.deliver"] >= 1


def test_no_flower_answer_holds_a_secret(flower: Flower, traffic: dict[str, str]) -> None:
    # Read everything again so this test stands alone, then search every answer Flower gave.
    flower.json("/api/tasks")
    flower.json(f"/api/task/info/{traffic['action_task']}")
    flower.json("/api/workers?refresh=1")
    assert flower.get("/metrics").status_code == 200
    assert flower.get(f"/task/{traffic['action_task']}").status_code == 200
    table = flower.get(
        "/tasks/datatable?draw=1&start=0&length=100000&search[value]="
        "&order[0][column]=0&columns[0][data]=received&order[0][dir]=desc"
    )
    assert table.status_code == 200, table.text
    assert traffic["action_task"] in table.text
    assert len(flower.answers) >= 6
    keys = [key for key in os.environ["DISPATCHER_ENCRYPTION_KEYS"].split(",") if key]
    assert keys
    for path, text in flower.answers.items():
        assert SECRET not in text, path
        assert "SECRET-flower" not in text, path
        assert not any(key in text for key in keys), path
