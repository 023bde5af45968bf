"""Live updates of the browser inbox: Socket.IO (what ``@novu/js`` connects to) and Server-Sent
Events (``GET /v1/inbox/events``, for pages without a Socket.IO client), fed by Redis.

Each API process holds one :class:`LiveHub`. Its first live connection starts one subscription
to :data:`dispatcher.runtime.inbox_events.CHANNEL`; an event for a subscriber with connections
here is read from the database (the event carries ids only) and pushed as Novu's socket events:
``notification_received`` (``{message}``: Novu's message entity), ``unread_count_changed``
(``{unreadCount, counts}``) and ``unseen_count_changed`` (``{unseenCount}``). Events for
subscribers with no connection here are dropped on arrival and cost no database read.

Events are handled in bursts: what arrives while the previous burst is read and pushed waits
and forms the next one (up to :data:`MAX_BURST` events; a lone event waits for nothing). A burst
costs at most four queries, in one session, in a thread, however many subscribers it concerns
(its new messages, their subscribers and workflows, and the counts of all its subscribers with
one ``GROUP BY``); then each subscriber gets its new messages in the order they were announced,
and its counts once. A broadcast written back for 2,000 subscribers connected here is thus
four bursts of at most four queries each, not four or five queries per subscriber (README,
"Inbox": the benchmark). Each row read is matched to the very inbox it was announced
for, so no subscriber is ever pushed another's message or counts.

A Socket.IO connection authenticates with the session token in its query (``?token=``, as
``@novu/js`` sends it) or its ``auth`` object; a page's ``Origin`` must be one of the token's
organisation's origins. On connect both counts are sent at once, so a page (and a test) knows
it is live before anything happens.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
import socketio
from engineio import packet as engineio_packet
from socketio import packet as socketio_packet
from starlette.types import ASGIApp

from dispatcher.api.errors import ApiError
from dispatcher.api.inbox import feed, sessions
from dispatcher.api.inbox.secrets import origin_allowed_anywhere
from dispatcher.api.inbox.sessions import InboxCaller
from dispatcher.config import get_settings
from dispatcher.runtime import inbox_events
from dispatcher.runtime.resources import database

logger = logging.getLogger(__name__)

SOCKET_PATH = "socket.io"
#: Seconds between two keep-alive comments of an event stream (proxies close idle ones).
SSE_KEEPALIVE = 15.0
#: Events a slow event-stream reader may fall behind before it is cut off.
SSE_QUEUE = 100
#: Longest pause between two tries to reach Redis.
MAX_RETRY_DELAY = 10.0
#: Events read and pushed together at most (the ids of one burst's query).
MAX_BURST = 500
#: Subscribers whose events are queued before the loop lets the connections' writers run.
PUSH_SLICE = 100
#: Seconds of bursts in a row during which the cyclic garbage collector waits, at most.
GC_DEFERRED_AT_MOST = 5.0

Event = tuple[str, dict[str, Any]]


def room(organisation_id: uuid.UUID | str, subscriber_id: uuid.UUID | str) -> str:
    return f"{organisation_id}:{subscriber_id}"


@dataclass(frozen=True, slots=True)
class Change:
    """One event of the change feed: an inbox, and the new message if it announces one."""

    owner: feed.Owner
    message_id: uuid.UUID | None = None

    @classmethod
    def parse(cls, item: dict[str, str]) -> Change | None:
        try:
            owner = (uuid.UUID(item["org"]), uuid.UUID(item["subscriber"]))
            message_id = uuid.UUID(item["message"]) if item.get("message") else None
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        return cls(owner, message_id)

    @property
    def room(self) -> str:
        return room(*self.owner)


def _counts(caller: InboxCaller) -> dict[str, Any]:
    owner = (caller.organisation_id, caller.subscriber_id)
    with database().session() as session:
        return feed.live_counts(session, {owner})[owner]


def _read_burst(
    wanted: dict[uuid.UUID, feed.Owner], owners: set[feed.Owner]
) -> tuple[dict[uuid.UUID, dict[str, Any]], dict[feed.Owner, dict[str, Any]]]:
    with database().session() as session:
        return feed.new_messages(session, wanted), feed.live_counts(session, owners)


def count_events(counts: dict[str, Any]) -> list[Event]:
    unread = counts["unread"]
    return [
        ("unread_count_changed", {"unreadCount": unread["total"], "counts": unread}),
        ("unseen_count_changed", {"unseenCount": counts["unseen"]}),
    ]


class LiveHub:
    """This process's live connections and its one subscription to the change feed."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=self._origin_allowed,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self._streams: dict[str, set[asyncio.Queue[Event]]] = {}
        self._callers: dict[str, InboxCaller] = {}
        self._listener: asyncio.Task[None] | None = None
        self._pending: list[Change] = []
        self._flusher: asyncio.Task[None] | None = None

    # --- connections ---------------------------------------------------------------------

    @staticmethod
    def _origin_allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        # Engine.IO asks before any token is read: an origin some organisation allows passes
        # here; :meth:`_connect` then checks it against the token's organisation.
        return origin is None or origin_allowed_anywhere(origin)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is None:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            token = (query.get("token") or [None])[0]
        try:
            caller = await asyncio.to_thread(self.authenticate, token, environ.get("HTTP_ORIGIN"))
        except ApiError:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        self._callers[sid] = caller
        await self.sio.enter_room(sid, room(caller.organisation_id, caller.subscriber_id))
        self.ensure_listening()
        for name, payload in count_events(await asyncio.to_thread(_counts, caller)):
            await self.sio.emit(name, payload, to=sid)

    async def _disconnect(self, sid: str, *_: Any) -> None:
        self._callers.pop(sid, None)

    @staticmethod
    def authenticate(token: str | None, origin: str | None) -> InboxCaller:
        caller, keys = sessions.verify(token)
        if origin is not None and origin not in keys.cors_origins:
            raise sessions.InboxUnauthorizedError()
        return caller

    async def stream(self, caller: InboxCaller) -> AsyncIterator[str]:
        """The Server-Sent Events of one page, until it goes away."""
        key = room(caller.organisation_id, caller.subscriber_id)
        queue: asyncio.Queue[Event] = asyncio.Queue(SSE_QUEUE)
        self._streams.setdefault(key, set()).add(queue)
        self.ensure_listening()
        try:
            for name, payload in count_events(await asyncio.to_thread(_counts, caller)):
                yield _sse(name, payload)
            while True:
                try:
                    name, payload = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield _sse(name, payload)
        finally:
            listeners = self._streams.get(key, set())
            listeners.discard(queue)
            if not listeners:
                self._streams.pop(key, None)

    # --- the change feed -----------------------------------------------------------------

    def ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        url = get_settings().resolved_redis_url
        if url is None:
            loop = asyncio.get_running_loop()

            def schedule(item: dict[str, str]) -> None:
                loop.call_soon_threadsafe(self.arrived, item)

            inbox_events.listen_locally(schedule)
            return
        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(inbox_events.CHANNEL)
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            item = json.loads(message["data"])
                        except (TypeError, ValueError):
                            continue
                        self.arrived(item)
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("inbox live feed: Redis unavailable (%s)", type(exc).__name__)
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def arrived(self, item: dict[str, str]) -> None:
        """Take one change-feed event: kept for the next burst if it concerns a connection
        here, else dropped at once."""
        change = Change.parse(item)
        if change is None or not self.is_here(change.room):
            return
        self._pending.append(change)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    def is_here(self, key: str) -> bool:
        """Whether the room has a Socket.IO connection or an event stream in this process."""
        if key in self._streams:
            return True
        return any(True for _ in self.sio.manager.get_participants("/", key))

    async def _flush(self) -> None:
        # The cyclic collector waits until the bursts are pushed: what a burst allocates is
        # freed by reference counting, and a full collection walks every object of every live
        # connection (2,000 of them: some 400,000 objects, 0.5 s with the loop stopped),
        # which would land inside a broadcast's pushes (README, "Inbox": the benchmark).
        # Bursts that keep coming get it back after GC_DEFERRED_AT_MOST seconds.
        deferred = gc.isenabled()
        if deferred:
            gc.disable()
        until = asyncio.get_running_loop().time() + GC_DEFERRED_AT_MOST
        try:
            while self._pending:
                if deferred and asyncio.get_running_loop().time() > until:
                    gc.enable()
                    deferred = False
                # One turn of the loop first: the listener takes what Redis has already sent.
                await asyncio.sleep(0)
                burst, self._pending = self._pending[:MAX_BURST], self._pending[MAX_BURST:]
                try:
                    await self.deliver(burst)
                except Exception:  # a live update is a courtesy: the next burst still goes out
                    logger.exception("inbox live feed: a burst of %d was not pushed", len(burst))
            await asyncio.sleep(0)  # the writers send the last slice's events first
        finally:
            if deferred:
                gc.enable()

    async def deliver(self, burst: list[Change]) -> None:
        """Push a burst of change-feed events to this process's connections of their
        subscribers: one read for all of them (in a thread), then each subscriber's events."""
        here = [change for change in burst if self.is_here(change.room)]
        if not here:
            return
        wanted = {c.message_id: c.owner for c in here if c.message_id is not None}
        owners = {change.owner for change in here}
        messages, counts = await asyncio.to_thread(_read_burst, wanted, owners)
        events: dict[feed.Owner, list[Event]] = {owner: [] for owner in owners}
        for change in here:
            message = messages.get(change.message_id) if change.message_id else None
            if message is not None:
                events[change.owner].append(("notification_received", {"message": message}))
        for owner, found in counts.items():
            events[owner].extend(count_events(found))
        for number, (owner, shown) in enumerate(events.items(), start=1):
            await self._push(room(*owner), shown)
            if number % PUSH_SLICE == 0:
                await asyncio.sleep(0)  # the connections' writers send what is queued so far

    async def _push(self, key: str, events: list[Event]) -> None:
        """Queue ``events`` on each connection of the room, in order.

        What ``AsyncServer.emit`` does for a room, without its task per connection and event:
        the packets of a room's events are queued without a pause in between, so each
        connection's writer takes them at once, and a burst of 2,000 rooms costs no 6,000
        tasks (README, "Inbox": the benchmark)."""
        participants = [eio_sid for _, eio_sid in self.sio.manager.get_participants("/", key)]
        streams = list(self._streams.get(key, ()))
        for name, payload in events:
            if participants:
                packet = self._packet(name, payload)
                for eio_sid in participants:
                    await self.sio.eio.send_packet(eio_sid, packet)
            for queue in streams:
                if queue.full():
                    continue  # a reader this far behind reloads its feed anyway
                queue.put_nowait((name, payload))

    def _packet(self, name: str, payload: dict[str, Any]) -> engineio_packet.Packet:
        """One Socket.IO event of the default namespace, as Engine.IO sends it (the payload is
        JSON: no binary attachments, so no scan of it for any)."""
        event = self.sio.packet_class(
            socketio_packet.EVENT, data=[name, payload], namespace="/", binary=False
        )
        return engineio_packet.Packet(engineio_packet.MESSAGE, event.encode())

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with Socket.IO beside it at ``/socket.io/``."""
        wrapped: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app, socketio_path=SOCKET_PATH)
        return wrapped


def _sse(name: str, payload: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"
