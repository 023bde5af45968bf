"""Close the digests a batch is about to send, so that no event joins one after its events are read.

A trigger joins a digest by writing its leader row while the digest is still open
(:func:`dispatcher.notifications.writing._open_digests`) and commits its collected events in the
same transaction. Closing takes the leader row's lock and sets ``digest_closed_at``, so the two are
serialised: a trigger that joined first has committed before the close goes through, and its
events are visible to the read that follows the close (under READ COMMITTED every statement sees
what was committed before it began); a trigger that comes later waits for the close and, its
conditions checked again on the closed row, starts a new digest. Either way every event is in a
digest that is sent, or sent on its own.

Why a lock rather than a version counter compared at write-back: a counter only finds out after
the message went out without the late events, and then there is nothing right left to do. Why in
rounds: the sender waits for one leader at a time holding no other lock, and takes the rest only
if they are free (``SKIP LOCKED``), so it never waits while holding a lock a trigger waits for,
whatever order triggers lock their leaders in: no deadlock. On SQLite the locking clauses are not
rendered; the ``UPDATE`` takes the single writer lock, which is the same serialisation.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Notification
from models.bulk import among
from models.types import utcnow


def close_open_digests(session: Session, leader_ids: Collection[uuid.UUID]) -> None:
    """Mark these digest leaders closed, each in a committed transaction of its own session on
    ``session``'s database (``session`` itself is left as it was)."""
    if not leader_ids:
        return
    with Session(session.get_bind()) as closing:
        pending = list(
            closing.scalars(
                select(Notification.id).where(
                    among(closing, Notification.id, leader_ids),
                    Notification.digest_closed_at.is_(None),
                )
            )
        )
        closing.commit()
        while pending:
            with closing.begin():
                held = {*_lock_open(closing, pending[:1], wait=True),
                        *_lock_open(closing, pending[1:], wait=False)}  # fmt: skip
                if held:
                    closing.execute(
                        update(Notification)
                        .where(among(closing, Notification.id, held))
                        .values(digest_closed_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            pending = [leader for leader in pending[1:] if leader not in held]


def _lock_open(session: Session, ids: list[uuid.UUID], *, wait: bool) -> list[uuid.UUID]:
    """Lock those of ``ids`` still open; without ``wait``, only those no one else holds."""
    if not ids:
        return []
    return list(
        session.scalars(
            select(Notification.id)
            .where(among(session, Notification.id, ids), Notification.digest_closed_at.is_(None))
            .with_for_update(key_share=True, skip_locked=not wait)
        )
    )
