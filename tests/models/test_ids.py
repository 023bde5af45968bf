"""Ids drawn from a pool of the system's random bytes: valid version-4 UUIDs and, for rows,
time-ordered version-7 ones; never repeated across threads, pool refills or a fork."""

from __future__ import annotations

import os
import threading
import time
import uuid

from models import Delivery, Notification
from models.ids import POOL_IDS, new_hex_id, new_id, new_row_id


def test_ids_are_random_version_4_uuids_across_refills() -> None:
    ids = [new_id() for _ in range(POOL_IDS * 3 + 7)]
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {uuid.RFC_4122}


def test_row_ids_are_version_7_uuids_ordered_by_the_millisecond_they_were_made() -> None:
    earlier = [new_row_id() for _ in range(POOL_IDS * 2 + 3)]
    before = time.time_ns() // 1_000_000
    time.sleep(0.002)
    later = [new_row_id() for _ in range(50)]
    every = earlier + later
    assert len(set(every)) == len(every)
    assert {i.version for i in every} == {7}
    assert {i.variant for i in every} == {uuid.RFC_4122}
    # Any id of a later millisecond sorts after every id of an earlier one, as text too
    # (what an index on the column orders by).
    assert max(str(i) for i in earlier) < min(str(i) for i in later)
    assert max(i.int >> 80 for i in earlier) <= before < min(j.int >> 80 for j in later)
    # The rest is random: ids of the same millisecond differ beyond the time.
    assert len({i.int & ((1 << 62) - 1) for i in earlier}) == len(earlier)


def test_new_rows_of_the_busy_tables_take_time_ordered_ids() -> None:
    for model in (Notification, Delivery):
        default = model.__table__.c.id.default
        assert default is not None
        assert default.arg(None).version == 7


def test_the_hex_form_is_uuid4_hex() -> None:
    value = new_hex_id()
    assert len(value) == 32
    assert uuid.UUID(hex=value).version == 4


def test_threads_never_share_ids() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(into: list[uuid.UUID]) -> None:
        into.extend(new_id() for _ in range(POOL_IDS * 2))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for into in made for i in into]
    assert len(set(every)) == len(every) == 4 * POOL_IDS * 2


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    new_id()  # the pool now holds ids the parent will hand out next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, b"".join(new_id().bytes for _ in range(10)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    child = {uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)}
    parent = {new_id() for _ in range(10)}
    assert len(child) == 10
    assert not child & parent
