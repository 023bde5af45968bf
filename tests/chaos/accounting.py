"""Counting what became of every delivery: the database's word against the provider's record."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from dispatcher.dev.fakeserver import SENDING_ANSWERS, Recorded

TERMINAL = ("sent", "failed", "skipped", "unknown")


@dataclass(frozen=True)
class Figures:
    deliveries: int
    by_status: dict[str, int]
    #: Requests the fake provider received for these deliveries, and how it answered them.
    requests: int
    by_answer: dict[str, int]
    #: Deliveries the provider accepted (sent) at least once, and more than once; an accepted
    #: request may have lost its answer (``SENDING_ANSWERS``).
    accepted: int
    duplicates: int
    #: Accepted requests beyond the first of each delivery.
    extra_sends: int
    #: Not in a terminal state.
    unfinished: int
    #: Recorded as sent although the provider never accepted them.
    sent_without_request: int
    #: Should have been sent but ended failed or skipped.
    undelivered: int
    #: Recorded as failed or skipped although the provider accepted them.
    failed_but_accepted: int
    #: Deliveries whose recorded attempts differ from the requests the provider saw.
    attempts_mismatch: int
    #: Requests for delivery ids outside the organisations counted.
    unknown_request_ids: int = 0
    #: Duplicates with an ``ambiguous`` attempt recorded: a request that timed out or lost its
    #: answer, resent as ``on_ambiguous=resend`` (the default) promises.
    resent_after_lost_answer: int = 0

    @property
    def unexplained_duplicates(self) -> int:
        return self.duplicates - self.resent_after_lost_answer

    @property
    def lost(self) -> int:
        return self.unfinished + self.sent_without_request + self.undelivered

    def line(self) -> str:
        return (
            f"deliveries={self.deliveries} by_status={self.by_status} requests={self.requests} "
            f"by_answer={self.by_answer} accepted={self.accepted} lost={self.lost} "
            f"(unfinished={self.unfinished}, sent_without_request={self.sent_without_request}, "
            f"undelivered={self.undelivered}) duplicates={self.duplicates} "
            f"extra_sends={self.extra_sends} failed_but_accepted={self.failed_but_accepted} "
            f"attempts_mismatch={self.attempts_mismatch} other_requests={self.unknown_request_ids} "
            f"resent_after_lost_answer={self.resent_after_lost_answer}"
        )


def count(
    engine: sa.Engine,
    organisation_ids: Sequence[uuid.UUID],
    requests: Iterable[Recorded],
    *,
    expect_sent: bool = True,
) -> Figures:
    """``expect_sent``: every delivery should end sent (no cause to fail it was planted)."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, status FROM deliveries WHERE organisation_id = ANY(:orgs)"),
            {"orgs": list(organisation_ids)},
        ).all()
        recorded_attempts = dict(
            connection.execute(
                sa.text(
                    "SELECT delivery_id, count(*) FROM delivery_attempts "
                    "WHERE organisation_id = ANY(:orgs) AND provider = 'fake_http' "
                    "GROUP BY delivery_id"
                ),
                {"orgs": list(organisation_ids)},
            ).all()
        )
        ambiguous = {
            str(row[0])
            for row in connection.execute(
                sa.text(
                    "SELECT DISTINCT delivery_id FROM delivery_attempts "
                    "WHERE organisation_id = ANY(:orgs) AND outcome = 'ambiguous'"
                ),
                {"orgs": list(organisation_ids)},
            )
        }
    statuses = {str(row[0]): str(row[1]) for row in rows}
    seen: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    unknown = 0
    for request in requests:
        if request.delivery_id not in statuses:
            unknown += 1
            continue
        seen[request.delivery_id] += 1
        answers[request.answer] += 1
        if request.answer in SENDING_ANSWERS:
            accepted[request.delivery_id] += 1
    by_status = Counter(statuses.values())
    return Figures(
        deliveries=len(statuses),
        by_status=dict(sorted(by_status.items())),
        requests=sum(seen.values()),
        by_answer=dict(sorted(answers.items())),
        accepted=len(accepted),
        duplicates=sum(1 for number in accepted.values() if number > 1),
        extra_sends=sum(number - 1 for number in accepted.values()),
        unfinished=sum(1 for status in statuses.values() if status not in TERMINAL),
        sent_without_request=sum(
            1 for key, status in statuses.items() if status == "sent" and not accepted[key]
        ),
        undelivered=sum(1 for status in statuses.values() if status in ("failed", "skipped"))
        if expect_sent
        else 0,
        failed_but_accepted=sum(
            1 for key, status in statuses.items() if status != "sent" and accepted[key]
        ),
        attempts_mismatch=sum(
            1 for key in statuses if recorded_attempts.get(uuid.UUID(key), 0) != seen[key]
        ),
        unknown_request_ids=unknown,
        resent_after_lost_answer=sum(
            1 for key, number in accepted.items() if number > 1 and key in ambiguous
        ),
    )
