"""Live updates through real ``dispatcher api`` processes and the session's real worker: a
trigger sent by the worker reaches a page connected to another API process (Redis fan-out), by
Server-Sent Events and by Socket.IO, and a mark made through one process changes the counts
a page of the other one sees."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio

from dispatcher.api.inbox.secrets import rotate
from dispatcher.dev.api_process import running_api
from dispatcher.notifications.triggers import trigger
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.api.inbox.conftest import hash_of
from tests.dispatcher.notify_support import subscriber, workflow

pytestmark = pytest.mark.usefixtures("worker")

IN_APP = {
    "kind": "in_app",
    "template": {"title": "Hello", "body": "Welcome {{ payload.name }}"},
    "config": {"options": {"tags": ["greeting"], "primaryAction": {"label": "Open"}}},
}
WAIT = 60.0


@pytest.fixture(scope="module")
def two_apis(postgres_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    first, second = free_port(), free_port()
    with (
        running_api(port=first, log_file=DATA_DIR / "api-inbox-1.log"),
        running_api(port=second, log_file=DATA_DIR / "api-inbox-2.log"),
    ):
        yield f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"


def _session(api: str, organisation_id: uuid.UUID, subscriber_id: str) -> str:
    rotated = rotate(organisation_id)
    answer = httpx.post(
        f"{api}/v1/inbox/session",
        json={
            "applicationIdentifier": rotated.application_identifier,
            "subscriber": {"subscriberId": subscriber_id},
            "subscriberHash": hash_of(subscriber_id, rotated.secret),
        },
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["data"]["token"]
    return token


class EventStream:
    """``GET /v1/inbox/events`` read in a thread; events land in ``events``."""

    def __init__(self, api: str, token: str) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(api, token), daemon=True)
        self._thread.start()

    def _read(self, api: str, token: str) -> None:
        timeout = httpx.Timeout(5.0, read=WAIT)
        with httpx.stream(
            "GET", f"{api}/v1/inbox/events", params={"token": token}, timeout=timeout
        ) as answer:
            self.events.put(("status", answer.status_code))
            name = None
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    self.events.put((name, json.loads(line[6:])))

    def next(self, wanted: str) -> Any:
        while True:
            name, payload = self.events.get(timeout=WAIT)
            if name == wanted:
                return payload

    def close(self) -> None:
        self._stop.set()


def test_a_sent_message_and_a_mark_reach_a_page_of_another_process_by_sse(
    two_apis: tuple[str, str], organisation_id: uuid.UUID
) -> None:
    api, other = two_apis
    subscriber(organisation_id, "ada")
    workflow(organisation_id, "hello", [IN_APP])
    token = _session(api, organisation_id, "ada")
    stream = EventStream(other, token)
    try:
        assert stream.next("status") == 200
        assert stream.next("unread_count_changed")["unreadCount"] == 0
        trigger(organisation_id, "hello", "ada", {"name": "Ada"})
        received = stream.next("notification_received")["message"]
        latency = time.time() - _epoch(received["createdAt"])
        assert received["content"] == "Welcome Ada"
        assert received["tags"] == ["greeting"]
        assert received["cta"]["action"]["buttons"][0] == {
            "type": "primary", "content": "Open", "url": None,
        }  # fmt: skip
        assert received["subscriber"]["subscriberId"] == "ada"
        assert stream.next("unread_count_changed")["counts"]["total"] == 1
        assert stream.next("unseen_count_changed") == {"unseenCount": 1}
        headers = {"Authorization": f"Bearer {token}"}
        read = httpx.patch(f"{api}/v1/inbox/notifications/{received['_id']}/read", headers=headers)
        assert read.status_code == 200, read.text
        assert stream.next("unread_count_changed")["unreadCount"] == 0
        print(f"write-back to the page of the other process: {latency * 1000:.0f} ms")
    finally:
        stream.close()


def _epoch(moment: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def test_socket_io_pushes_novu_events_to_the_subscriber_alone(
    two_apis: tuple[str, str], organisation_id: uuid.UUID
) -> None:
    api, other = two_apis
    for name in ("ada", "bo"):
        subscriber(organisation_id, name)
    workflow(organisation_id, "hello", [IN_APP])
    ada, bo = _session(api, organisation_id, "ada"), _session(api, organisation_id, "bo")

    async def scenario() -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
        seen: dict[str, list[tuple[str, Any]]] = {"ada": [], "bo": []}
        received = {"ada": asyncio.Event(), "bo": asyncio.Event()}
        clients = []
        for name, token in (("ada", ada), ("bo", bo)):
            client = socketio.AsyncClient(reconnection=False)

            def record(event: str, payload: Any, who: str = name) -> None:
                seen[who].append((event, payload))
                if event == "notification_received":
                    received[who].set()

            for event in ("notification_received", "unread_count_changed", "unseen_count_changed"):
                client.on(event, lambda payload, event=event, record=record: record(event, payload))
            await client.connect(
                f"{other}?token={token}", transports=["websocket"], socketio_path="socket.io"
            )
            clients.append(client)
        refused = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(f"{other}?token=nope", transports=["websocket"])
        await asyncio.to_thread(trigger, organisation_id, "hello", "ada", {"name": "Ada"})
        await asyncio.wait_for(received["ada"].wait(), WAIT)
        await asyncio.to_thread(trigger, organisation_id, "hello", "bo", {"name": "Bo"})
        await asyncio.wait_for(received["bo"].wait(), WAIT)
        for client in clients:
            await client.disconnect()
        return seen["ada"], seen["bo"]

    ada_events, bo_events = asyncio.run(scenario())
    zero = {"total": 0, "severity": {"high": 0, "medium": 0, "low": 0, "none": 0}}
    for events, name in ((ada_events, "Ada"), (bo_events, "Bo")):
        contents = [
            payload["message"]["content"]
            for event, payload in events
            if event == "notification_received"
        ]
        assert contents == [f"Welcome {name}"]
        assert events[0] == ("unread_count_changed", {"unreadCount": 0, "counts": zero})
