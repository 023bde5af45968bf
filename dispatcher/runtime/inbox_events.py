"""The browser inbox's change feed: one Redis pub/sub channel every API process listens to.

The sender publishes ``{"org", "subscriber", "message"}`` (row ids) when it has committed a new
in-app message; the API marks publish ``{"org", "subscriber"}`` alone when counts change. Each
API process subscribes once and pushes to the browsers of that subscriber it holds
(:mod:`dispatcher.api.inbox.live`); ids only travel, so nothing of the message leaves the
database through Redis. Without Redis (the embedded default) events stay in this process. A
publish that fails is logged and dropped: a live update is a courtesy, the feed is the record.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from functools import lru_cache

import redis

from dispatcher.config import get_settings

logger = logging.getLogger(__name__)

CHANNEL = "dispatcher:inbox:events"

#: In-process listeners (the embedded default, without Redis).
_local: list[Callable[[dict[str, str]], None]] = []


@lru_cache(maxsize=1)
def _client() -> redis.Redis | None:
    url = get_settings().resolved_redis_url
    if url is None:
        return None
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def event(
    organisation_id: uuid.UUID, subscriber_id: uuid.UUID, message_id: uuid.UUID | None = None
) -> dict[str, str]:
    found = {"org": str(organisation_id), "subscriber": str(subscriber_id)}
    if message_id is not None:
        found["message"] = str(message_id)
    return found


def publish(events: list[dict[str, str]]) -> None:
    """Publish ``events`` (after their transaction committed)."""
    if not events:
        return
    client = _client()
    if client is None:
        for listener in list(_local):
            for item in events:
                listener(item)
        return
    try:
        with client.pipeline(transaction=False) as pipe:
            for item in events:
                pipe.publish(CHANNEL, json.dumps(item, separators=(",", ":")))
            pipe.execute()
    except redis.RedisError as exc:
        logger.warning("inbox events not published (%s): live pages miss them", type(exc).__name__)


def listen_locally(listener: Callable[[dict[str, str]], None]) -> None:
    """Receive this process's events (only without Redis)."""
    _local.append(listener)


def reset() -> None:
    _client.cache_clear()
    _local.clear()
