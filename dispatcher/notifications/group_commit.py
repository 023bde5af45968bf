"""Group commit: concurrent single triggers of one process share one transaction.

Each commit waits for the database to make it durable (a flush to disk on PostgreSQL), and that
wait, not the work, bounds one trigger per transaction to a few hundred a second. Callers hand
their validated event to one committer thread per process and wait on a future; the committer
takes everything queued since its last commit (up to :data:`MAX_GROUP`) and writes it as one
group. A caller alone waits for no one: its group is itself, committed at once, and the next
group forms while this one commits.

The committer never decides an outcome itself: the ``write_group`` function it is given settles
every request's future. A fork starts a new committer in the child on first use.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dispatcher.config import Settings
from dispatcher.notifications.events import TriggerEvent

logger = logging.getLogger(__name__)

#: Events written in one transaction at most.
MAX_GROUP = 500


@dataclass
class GroupRequest:
    organisation: uuid.UUID
    event: TriggerEvent
    #: The caller's settings: a group holds only requests made under the same ones.
    settings: Settings
    future: Future[Any] = field(default_factory=Future)


class GroupCommitter:
    """Queues requests for :attr:`write_group`, which is called with lists of them from one
    thread and must settle each request's future."""

    def __init__(self, write_group: Callable[[list[GroupRequest]], None]) -> None:
        self.write_group = write_group
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[GroupRequest] = queue.SimpleQueue()
        self._pid = 0

    def submit(self, request: GroupRequest) -> Future[Any]:
        self._started().put(request)
        return request.future

    def pending(self) -> int:
        """Requests waiting for a group (not those of the group being written)."""
        return self._queue.qsize() if self._pid == os.getpid() else 0

    def _started(self) -> queue.SimpleQueue[GroupRequest]:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # After a fork the parent's thread is gone: this process gets its own.
                    self._queue = queue.SimpleQueue()
                    thread = threading.Thread(
                        target=self._run, args=(self._queue,), name="trigger-committer", daemon=True
                    )
                    thread.start()
                    self._pid = os.getpid()
        return self._queue

    def _run(self, requests: queue.SimpleQueue[GroupRequest]) -> None:
        while True:
            group = [requests.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(requests.get_nowait())
                except queue.Empty:
                    break
            # A caller that gave up (an awaiting task cancelled) is dropped here.
            live = [request for request in group if request.future.set_running_or_notify_cancel()]
            by_settings: dict[int, list[GroupRequest]] = {}
            for request in live:
                by_settings.setdefault(id(request.settings), []).append(request)
            for same in by_settings.values():
                self._write(same)

    def _write(self, group: list[GroupRequest]) -> None:
        try:
            self.write_group(group)
        except Exception as exc:  # every waiting caller must be answered
            # The error's class only: a database error's text may quote the events' values.
            logger.warning("a group of %d triggers failed: %s", len(group), type(exc).__name__)
            for request in group:
                if not request.future.done():
                    request.future.set_exception(exc)
