"""Novu's browser client, ``@novu/js`` in Node, against a real ``dispatcher api`` process and
the session's real worker: session, list, counts, marks, and a live notification after a
trigger. The client is pinned in tests/inbox_js (``npm ci`` there); without Node or its
modules the test skips locally and fails under CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dispatcher.api.inbox.secrets import rotate
from dispatcher.dev.api_process import running_api
from dispatcher.notifications.triggers import trigger
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.api.inbox.conftest import hash_of
from tests.dispatcher.api.inbox.test_live_e2e import IN_APP
from tests.dispatcher.notify_support import subscriber, wait_until_terminal, workflow

pytestmark = pytest.mark.usefixtures("worker")

CLIENT = Path(__file__).resolve().parents[3] / "inbox_js"
WAIT = 90.0


def _node() -> str:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not on PATH"
    elif not (CLIENT / "node_modules" / "@novu" / "js").is_dir():
        missing = f"run `npm ci` in {CLIENT.name}"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"@novu/js test: {missing}")
        pytest.skip(f"@novu/js test: {missing}")
    assert node is not None
    return node


@pytest.fixture(scope="module")
def api_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    with running_api(port=port, log_file=DATA_DIR / "api-novu-js.log"):
        yield f"http://127.0.0.1:{port}"


class Client:
    """The Node process; its JSON lines are read one step at a time."""

    def __init__(self, node: str, environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [node, "inbox.mjs"],
            cwd=CLIENT,
            env={**os.environ, **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def step(self, name: str) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(WAIT)
            stderr = self.process.stderr.read() if self.process.stderr else ""
            pytest.fail(f"@novu/js exited ({self.process.returncode}) before {name}: {stderr}")
        answer = json.loads(line)
        assert answer["step"] == name, answer
        return answer["data"]


def test_novu_js_opens_a_session_reads_marks_and_receives_live(
    api_url: str, organisation_id: uuid.UUID
) -> None:
    node = _node()
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "hello", [IN_APP])
    for name in ("One", "Two", "Three"):
        receipt = trigger(organisation_id, "hello", "ada", {"name": name})
        wait_until_terminal(organisation_id, receipt.transaction_id)
    rotated = rotate(organisation_id)
    client = Client(
        node,
        {
            "API_URL": api_url,
            "APPLICATION_IDENTIFIER": rotated.application_identifier,
            "SUBSCRIBER_ID": "ada",
            "SUBSCRIBER_HASH": hash_of("ada", rotated.secret),
        },
    )
    try:
        listed = client.step("list")
        assert [item["body"] for item in listed["notifications"]] == [
            "Welcome Three", "Welcome Two", "Welcome One",
        ]  # fmt: skip
        assert listed["hasMore"] is False
        assert client.step("count") == [3, 3, 0]
        assert client.step("read") == {"isRead": True, "isSeen": True}
        assert client.step("archive") == {"isArchived": True}
        # Read: Three (read) and Two (archived, which reads); seen: both.
        assert client.step("count-after") == [1, 1, 1]
        assert client.step("live")["total"] == 1
        trigger(organisation_id, "hello", "ada", {"name": "Live"})
        assert client.step("received") == {
            "body": "Welcome Live", "isRead": False, "tags": ["greeting"],
        }  # fmt: skip
        assert client.process.wait(WAIT) == 0
    finally:
        if client.process.poll() is None:
            client.process.kill()
            client.process.wait()
