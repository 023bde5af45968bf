"""Group commit: concurrent single triggers of one process share one transaction.

Each commit waits for the database to make it durable (a flush to disk on PostgreSQL), and that
wait, with the statements around it, bounds one trigger per transaction to a few hundred a
second. Callers hand their validated event to a writer thread and wait on a future; the
writer takes everything queued since its last group (up to :data:`MAX_GROUP`; when several
are queued, whatever else arrives within :data:`LINGER`) and writes it in one transaction. A
caller alone waits for no one: its group is itself, written at once, and the next group forms
while this one is written.

Writing is two stages on threads of their own: a writer writes and commits a group (there are
:data:`WRITERS`), the finisher then publishes its deliveries and answers its callers while the
writer already writes the next one.
``write_group`` does the first stage and returns the second as a function; either stage settles
every request's future, with its result or an error. A fork starts new threads in the child on
first use.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dispatcher.config import Settings
from dispatcher.notifications.events import TriggerEvent

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Events written in one transaction at most.
MAX_GROUP = 500
#: Groups written at once: while one waits for its commit to reach the disk, the next is
#: written (and the database flushes both commits together).
WRITERS = 2
#: Seconds a writer waits for more once it found several requests at once: concurrent callers
#: come back in bursts as their groups are answered, and a group costs about the same whether
#: it holds three events or ten (measured: 8 threads gained about a third at 2 ms). A caller
#: alone never waits.
LINGER = 0.002


@dataclass
class GroupRequest:
    organisation: uuid.UUID
    event: TriggerEvent
    #: The caller's settings: a group holds only requests made under the same ones.
    settings: Settings
    future: Future[Any] = field(default_factory=Future)


#: Writes and commits a group; returns what finishes it, or ``None`` if it settled it already.
WriteGroup = Callable[[list[GroupRequest]], Callable[[], None] | None]


class GroupCommitter:
    """Queues requests for ``write_group``, called with lists of them from one thread."""

    def __init__(self, write_group: WriteGroup) -> None:
        self.write_group = write_group
        self._lock = threading.Lock()
        self._collecting = threading.Lock()
        self._requests: queue.SimpleQueue[GroupRequest] = queue.SimpleQueue()
        self._pid = 0

    def submit(self, request: GroupRequest) -> Future[Any]:
        self._started().put(request)
        return request.future

    def pending(self) -> int:
        """Requests waiting for a group (not those of the group being written)."""
        return self._requests.qsize() if self._pid == os.getpid() else 0

    def _started(self) -> queue.SimpleQueue[GroupRequest]:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # After a fork the parent's threads are gone: this process gets its own.
                    requests: queue.SimpleQueue[GroupRequest] = queue.SimpleQueue()
                    finishing: queue.SimpleQueue[_Finish] = queue.SimpleQueue()
                    threads = [
                        threading.Thread(target=self._write, args=(requests, finishing),
                                         name=f"trigger-writer-{number}", daemon=True)
                        for number in range(WRITERS)
                    ] + [threading.Thread(target=self._finish, args=(finishing,),
                                          name="trigger-finisher", daemon=True)]  # fmt: skip
                    for thread in threads:
                        thread.start()
                    self._requests = requests
                    self._pid = os.getpid()
        return self._requests

    def _write(
        self, requests: queue.SimpleQueue[GroupRequest], finishing: queue.SimpleQueue[_Finish]
    ) -> None:
        while True:
            # One writer at a time takes what is queued, so the writers do not split it.
            with self._collecting:
                group = [requests.get()]
                _drain(requests, group)
                if 1 < len(group) < MAX_GROUP:
                    # Callers arrive together: the rest of them are probably a moment behind.
                    time.sleep(LINGER)
                    _drain(requests, group)
            # A caller that gave up (an awaiting task cancelled) is dropped here.
            live = [request for request in group if request.future.set_running_or_notify_cancel()]
            by_settings: dict[int, list[GroupRequest]] = {}
            for request in live:
                by_settings.setdefault(id(request.settings), []).append(request)
            for same in by_settings.values():
                finish = _guarded(same, functools.partial(self.write_group, same))
                if finish is not None:
                    finishing.put(_Finish(same, finish))

    @staticmethod
    def _finish(finishing: queue.SimpleQueue[_Finish]) -> None:
        while True:
            item = finishing.get()
            _guarded(item.group, item.finish)


def _drain(requests: queue.SimpleQueue[GroupRequest], group: list[GroupRequest]) -> None:
    while len(group) < MAX_GROUP:
        try:
            group.append(requests.get_nowait())
        except queue.Empty:
            return


@dataclass
class _Finish:
    group: list[GroupRequest]
    finish: Callable[[], None]


def _guarded(group: list[GroupRequest], stage: Callable[[], T]) -> T | None:
    """Run ``stage``; if it fails, every caller of ``group`` not yet answered gets its error."""
    try:
        return stage()
    except Exception as exc:  # every waiting caller must be answered
        # The error's class only: a database error's text may quote the events' values.
        logger.warning("a group of %d triggers failed: %s", len(group), type(exc).__name__)
        for request in group:
            if not request.future.done():
                request.future.set_exception(exc)
        return None
