"""Verified callbacks handed to the broker together: concurrent requests of one API process
share a message.

A provider in a burst calls back many times at once (Twilio one request per status). One broker
message per request costs the API a broker round trip (two with Celery's task-sent event) and the
worker a task each; instead a publisher thread takes every callback queued since its last
message (until they hold :data:`MAX_EVENTS` events or more) and publishes them as one message,
and each request is answered once the message holding its events is with the broker (so a 200
still means the events are safe). A request alone waits for no one. A fork starts a new thread
in the child.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Events after which a message takes no further callback (one worker transaction applies them).
MAX_EVENTS = 1000

Publish = Callable[[list[dict[str, Any]]], None]


@dataclass
class _Pending:
    callback: dict[str, Any]
    future: Future[None] = field(default_factory=Future)


class CallbackPublisher:
    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._pid = 0

    def submit(self, callback: dict[str, Any]) -> Future[None]:
        """Queue a callback message; the future settles once it is published (or failed)."""
        pending = _Pending(callback)
        self._started().put(pending)
        return pending.future

    def _started(self) -> queue.SimpleQueue[_Pending]:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    threading.Thread(
                        target=self._run, args=(self._queue,), name="callback-publisher",
                        daemon=True,
                    ).start()  # fmt: skip
                    self._pid = os.getpid()
        return self._queue

    def _run(self, pending: queue.SimpleQueue[_Pending]) -> None:
        while True:
            group = [pending.get()]
            events = len(group[0].callback["events"])
            while events < MAX_EVENTS:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
                group.append(item)
                events += len(item.callback["events"])
            try:
                self.publish([item.callback for item in group])
            except Exception as exc:  # every waiting request must be answered
                logger.warning("could not publish %d callbacks: %s", len(group),
                               type(exc).__name__)  # fmt: skip
                for item in group:
                    item.future.set_exception(exc)
                continue
            for item in group:
                item.future.set_result(None)
