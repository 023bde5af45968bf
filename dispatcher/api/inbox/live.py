"""Live updates of the browser inbox: Socket.IO (what ``@novu/js`` connects to) and Server-Sent
Events (``GET /v1/inbox/events``, for pages without a Socket.IO client), fed by Redis.

Each API process holds one :class:`LiveHub`. Its first live connection starts one subscription
to :data:`dispatcher.runtime.inbox_events.CHANNEL`; an event for a subscriber with connections
here is read from the database (the event carries ids only) and pushed as Novu's socket events:
``notification_received`` (``{message}``: Novu's message entity), ``unread_count_changed``
(``{unreadCount, counts}``) and ``unseen_count_changed`` (``{unseenCount}``). Events for
subscribers with no connection here cost no database read.

A Socket.IO connection authenticates with the session token in its query (``?token=``, as
``@novu/js`` sends it) or its ``auth`` object; a page's ``Origin`` must be one of the token's
organisation's origins. On connect both counts are sent at once, so a page (and a test) knows
it is live before anything happens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
import socketio
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


def room(organisation_id: uuid.UUID | str, subscriber_id: uuid.UUID | str) -> str:
    return f"{organisation_id}:{subscriber_id}"


def _counts(caller: InboxCaller) -> dict[str, Any]:
    with database().session() as session:
        unread = feed.unread_counts(session, caller)
        unseen = feed.count(session, caller, feed.UNSEEN)
    return {"unread": unread, "unseen": unseen}


def _message(caller: InboxCaller, message_id: uuid.UUID) -> dict[str, Any] | None:
    with database().session() as session:
        return feed.message_for(session, caller, message_id)


def count_events(counts: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
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
        self._streams: dict[str, set[asyncio.Queue[tuple[str, dict[str, Any]]]]] = {}
        self._callers: dict[str, InboxCaller] = {}
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

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
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(SSE_QUEUE)
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
                loop.call_soon_threadsafe(self._spawn, item)

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
                        self._spawn(item)
            except (aioredis.RedisError, OSError) as exc:
                logger.warning("inbox live feed: Redis unavailable (%s)", type(exc).__name__)
            finally:
                await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def _spawn(self, item: dict[str, str]) -> None:
        task = asyncio.get_running_loop().create_task(self.deliver(item))
        # The loop keeps weak references to tasks: hold each until it is done.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _here(self, key: str) -> InboxCaller | None:
        """A caller of a connection here for the room, if any (``None``: nothing to do)."""
        for sid, _ in self.sio.manager.get_participants("/", key):
            caller = self._callers.get(sid)
            if caller is not None:
                return caller
        return None

    async def deliver(self, item: dict[str, str]) -> None:
        """Push one change-feed event to this process's connections of its subscriber."""
        try:
            organisation_id = uuid.UUID(item["org"])
            subscriber_id = uuid.UUID(item["subscriber"])
            message_id = uuid.UUID(item["message"]) if item.get("message") else None
        except (KeyError, ValueError):
            return
        key = room(organisation_id, subscriber_id)
        caller = self._here(key)
        if caller is None and key in self._streams:
            caller = InboxCaller(organisation_id, "", subscriber_id)
        if caller is None:
            return
        events: list[tuple[str, dict[str, Any]]] = []
        if message_id is not None:
            message = await asyncio.to_thread(_message, caller, message_id)
            if message is not None:
                events.append(("notification_received", {"message": message}))
        events.extend(count_events(await asyncio.to_thread(_counts, caller)))
        for name, payload in events:
            await self.sio.emit(name, payload, room=key)
            for queue in list(self._streams.get(key, ())):
                if queue.full():
                    continue  # a reader this far behind reloads its feed anyway
                queue.put_nowait((name, payload))

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` with Socket.IO beside it at ``/socket.io/``."""
        wrapped: ASGIApp = socketio.ASGIApp(self.sio, other_asgi_app=app, socketio_path=SOCKET_PATH)
        return wrapped


def _sse(name: str, payload: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"
