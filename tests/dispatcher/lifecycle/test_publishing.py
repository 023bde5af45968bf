"""Callbacks queued while a message is published go out together; a failure reaches each."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dispatcher.lifecycle.publishing import MAX_EVENTS, CallbackPublisher


def message(events: int) -> dict[str, Any]:
    return {"integration_id": "i", "events": [{}] * events}


def test_callbacks_waiting_for_the_publisher_share_a_message() -> None:
    published: list[int] = []
    gate = threading.Event()

    def publish(callbacks: list[dict[str, Any]]) -> None:
        gate.wait(timeout=10)
        published.append(len(callbacks))

    publisher = CallbackPublisher(publish)
    first = publisher.submit(message(1))
    waiting = [publisher.submit(message(1)) for _ in range(5)]
    gate.set()
    for future in [first, *waiting]:
        assert future.result(timeout=10) is None
    # The first went as soon as the publisher took it (with any queued by then); those queued
    # while it was published went together after it.
    assert sum(published) == 6
    assert len(published) <= 2


def test_a_message_holds_at_most_max_events() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def publish(callbacks: list[dict[str, Any]]) -> None:
        gate.wait(timeout=10)
        sizes.append(sum(len(c["events"]) for c in callbacks))

    publisher = CallbackPublisher(publish)
    futures = [publisher.submit(message(MAX_EVENTS // 2)) for _ in range(6)]
    gate.set()
    for future in futures:
        future.result(timeout=10)
    assert max(sizes) <= MAX_EVENTS + MAX_EVENTS // 2
    assert sum(sizes) == 3 * MAX_EVENTS


def test_a_failed_publish_fails_every_request_of_its_message() -> None:
    def publish(callbacks: list[dict[str, Any]]) -> None:
        raise ConnectionError("broker down")

    publisher = CallbackPublisher(publish)
    future = publisher.submit(message(1))
    with pytest.raises(ConnectionError):
        future.result(timeout=10)
