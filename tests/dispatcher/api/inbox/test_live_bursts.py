"""A burst of the live change feed read at once (:func:`feed.new_messages`,
:func:`feed.live_counts`) and pushed by :class:`LiveHub`: many subscribers of two
organisations connected to one API server (this process's application under uvicorn, so its
database statements can be counted), one pipeline of events on Redis, and each page gets
exactly its own messages, in order, and its own counts, for a bounded number of queries."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio
import uvicorn
from sqlalchemy import event, update

from dispatcher.api import create_app
from dispatcher.api.app import served
from dispatcher.api.inbox import feed
from dispatcher.runtime import inbox_events
from dispatcher.runtime.resources import database
from models import InboxMessage
from models.types import utcnow
from tests.conftest import free_port
from tests.dispatcher.api.inbox.conftest import Inbox, make_inbox

WAIT = 30.0
ZERO = {"total": 0, "severity": {"high": 0, "medium": 0, "low": 0, "none": 0}}


def _seen(*message_ids: str) -> None:
    with database().transaction() as session:
        session.execute(
            update(InboxMessage)
            .where(InboxMessage.id.in_([uuid.UUID(m) for m in message_ids]))
            .values(seen_at=utcnow())
        )


def test_one_read_serves_many_inboxes_of_several_organisations(inbox: Inbox) -> None:
    other = make_inbox(inbox.client, "Other")
    ada, bo = inbox.subscriber_row("ada"), inbox.subscriber_row("bo")
    eve = other.subscriber_row("eve")
    first, second = inbox.put("ada", "one"), inbox.put("ada", "two")
    for_bo, seen_by_bo = inbox.put("bo", "bo's"), inbox.put("bo", "seen")
    _seen(seen_by_bo)
    for_eve = other.put("eve", "eve's")
    wanted = {
        uuid.UUID(first): (inbox.organisation_id, ada),
        uuid.UUID(second): (inbox.organisation_id, ada),
        uuid.UUID(for_bo): (inbox.organisation_id, bo),
        uuid.UUID(for_eve): (other.organisation_id, eve),
        uuid.uuid4(): (inbox.organisation_id, ada),  # no such message: left out
    }
    owners = {(inbox.organisation_id, ada), (inbox.organisation_id, bo),
              (other.organisation_id, eve), (other.organisation_id, ada)}  # fmt: skip
    with database().session() as session:
        messages = feed.new_messages(session, wanted)
        counts = feed.live_counts(session, owners)
        # eve's message announced for ada, or for eve under ada's organisation: neither read
        forged = feed.new_messages(session, {uuid.UUID(for_eve): (inbox.organisation_id, ada)})
        crossed = feed.new_messages(session, {uuid.UUID(for_eve): (inbox.organisation_id, eve)})
    assert {m["content"] for m in messages.values()} == {"one", "two", "bo's", "eve's"}
    assert messages[uuid.UUID(for_eve)]["subscriber"]["subscriberId"] == "eve"
    assert messages[uuid.UUID(first)]["subscriber"]["subscriberId"] == "ada"
    assert forged == {} and crossed == {}
    assert counts[(inbox.organisation_id, ada)] == {
        "unread": {"total": 2, "severity": {"high": 0, "medium": 0, "low": 0, "none": 2}},
        "unseen": 2,
    }
    assert counts[(inbox.organisation_id, bo)]["unread"]["total"] == 2
    assert counts[(inbox.organisation_id, bo)]["unseen"] == 1
    assert counts[(other.organisation_id, eve)] == {
        "unread": {"total": 1, "severity": {"high": 0, "medium": 0, "low": 0, "none": 1}},
        "unseen": 1,
    }
    # ada's row under the other organisation is no inbox there: zero, not ada's counts
    assert counts[(other.organisation_id, ada)] == {"unread": ZERO, "unseen": 0}


@pytest.fixture
def server(inbox: Inbox) -> Iterator[str]:
    """This process's application served by uvicorn in a thread (its hub on Redis)."""
    port = free_port()
    config = uvicorn.Config(
        served(create_app()), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(WAIT)


class Page:
    """One live connection of a subscriber; ``events`` in the order they arrived."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    def record(self, name: str, payload: Any) -> None:
        self.events.append((name, payload))
        self.changed.set()

    def messages(self) -> list[str]:
        return [p["message"]["_id"] for n, p in self.events if n == "notification_received"]

    def counts(self) -> list[tuple[int, int]]:
        """(unread, unseen) of each pair of count events, in order."""
        unread = [p["unreadCount"] for n, p in self.events if n == "unread_count_changed"]
        unseen = [p["unseenCount"] for n, p in self.events if n == "unseen_count_changed"]
        return list(zip(unread, unseen, strict=False))

    async def until(self, done: Any) -> None:
        while not done(self):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), WAIT)


async def _socket(url: str, token: str, page: Page) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    for name in ("notification_received", "unread_count_changed", "unseen_count_changed"):
        client.on(name, lambda payload, name=name: page.record(name, payload))
    await client.connect(f"{url}?token={token}", transports=["websocket"])
    return client


async def _stream(url: str, token: str, page: Page) -> None:
    timeout = httpx.Timeout(5.0, read=WAIT)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream("GET", f"{url}/v1/inbox/events", params={"token": token}) as answer,
    ):
        name = None
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                page.record(name, json.loads(line[6:]))


def test_a_burst_reaches_every_page_with_its_own_messages_and_counts_in_few_queries(
    inbox: Inbox, server: str
) -> None:
    other = make_inbox(inbox.client, "Other")
    # (inbox, external id, pages): "a1" twice, "a0" in both organisations (two rows), "s0"
    # by Server-Sent Events alone; "nobody" has no page here.
    people = [(inbox, f"a{n}", 1) for n in range(14)] + [(other, f"b{n}", 1) for n in range(6)]
    people += [(other, "a0", 1), (inbox, "s0", 0)]
    people[1] = (inbox, "a1", 2)
    old: dict[str, int] = {}
    for number, (where, who, _) in enumerate(people):
        key = f"{where.organisation_id}/{who}"
        old[key] = number % 3  # older messages, seen and unread
        _seen(*(where.put(who, "old") for _ in range(old[key])))
    nobody = inbox.subscriber_row("nobody")
    tokens = {
        f"{where.organisation_id}/{who}": where.session(who).json()["data"]["token"]
        for where, who, _ in people
    }

    async def scenario() -> tuple[dict[str, list[Page]], dict[str, list[str]], list[str], int]:
        pages: dict[str, list[Page]] = {}
        clients = []
        for where, who, sockets in people:
            key = f"{where.organisation_id}/{who}"
            for _ in range(sockets):
                page = Page(key)
                clients.append(await _socket(server, tokens[key], page))
                pages.setdefault(key, []).append(page)
        sse = Page(f"{inbox.organisation_id}/s0")
        reader = asyncio.create_task(_stream(server, tokens[sse.who], sse))
        pages[sse.who] = [sse]
        everyone = [page for found in pages.values() for page in found]
        for page in everyone:  # live: the counts on connect
            await page.until(lambda p: len(p.counts()) == 1)

        # The write-back: new messages, committed, then one pipeline of their events, mixed
        # across inboxes and organisations, with count changes, an inbox with no page here,
        # and a message of "a0" of the other organisation announced for "a0" of this one.
        new: dict[str, list[str]] = {}
        events: list[dict[str, str]] = []
        for round_ in range(3):
            for number, (where, who, _) in enumerate(people):
                if round_ <= number % 3:
                    key = f"{where.organisation_id}/{who}"
                    message = where.put(who, f"{who} {round_}")
                    new.setdefault(key, []).append(message)
                    row = where.subscriber_row(who)
                    events.append(inbox_events.event(where.organisation_id, row,
                                                     uuid.UUID(message)))  # fmt: skip
        for where, who, _ in people[::4]:
            events.append(inbox_events.event(where.organisation_id, where.subscriber_row(who)))
        events.append(inbox_events.event(inbox.organisation_id, nobody,
                                         uuid.UUID(inbox.put("nobody", "x"))))  # fmt: skip
        forged = other.put("a0", "not for this a0")  # in the other a0's counts, not in its feed
        events.append(inbox_events.event(inbox.organisation_id, inbox.subscriber_row("a0"),
                                         uuid.UUID(forged)))  # fmt: skip

        statements: list[str] = []

        def executed(*args: Any) -> None:
            statements.append(args[2])

        engine = database().engine
        event.listen(engine, "before_cursor_execute", executed)
        try:
            await asyncio.to_thread(inbox_events.publish, events)
            for key, found in pages.items():
                for page in found:
                    wanted = new.get(key, [])
                    await page.until(
                        lambda p, wanted=wanted: (
                            len(p.messages()) >= len(wanted)
                            and p.events[-1][0] == "unseen_count_changed"
                            and len(p.counts()) > 1
                        )
                    )
            await asyncio.sleep(0.5)  # anything more that would come, and must not
        finally:
            event.remove(engine, "before_cursor_execute", executed)
        for client in clients:
            await client.disconnect()
        reader.cancel()
        return pages, new, statements, forged

    pages, new, statements, forged = asyncio.run(scenario())
    for key, found in pages.items():
        for page in found:
            # its own new messages, each once, in the order they were announced
            assert page.messages() == new.get(key, []), key
            assert forged not in page.messages()
            # then its counts: every change shows them as written (the rows were committed
            # before their events), and never another inbox's
            unseen = len(new.get(key, [])) + (key == f"{other.organisation_id}/a0")
            assert page.counts()[0] == (old[key], 0), key
            assert set(page.counts()[1:]) == {(old[key] + unseen, unseen)}, key
            last = max(i for i, (name, _) in enumerate(page.events) if name.startswith("notif"))
            assert [name for name, _ in page.events[last + 1 :]][:2] == [
                "unread_count_changed", "unseen_count_changed",
            ], key  # fmt: skip
    first = pages[f"{inbox.organisation_id}/a1"]
    assert len(first) == 2 and first[0].messages() == first[1].messages()
    # One read per burst, of at most four statements, for some 60 events; a broadcast of that
    # size arrives in one or two bursts (one message per subscriber read alone was 4 or 5).
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects == statements
    assert 1 <= len(statements) <= 8, statements
    assert gc.isenabled()  # the collector, deferred while the bursts were pushed, is back
