"""Cost as the tables grow: the same work on an empty database and on one holding millions of
finished notifications, deliveries and attempts.

One organisation, one email workflow, BENCH_GROWTH_SUBSCRIBERS (10,000) subscribers, the fake
provider answering after BENCH_LATENCY_MS (100) ms, a worker of BENCH_WORKER_PROCESSES (4)
processes. Each of BENCH_GROWTH_ROUNDS (2) rounds, after one of warm-up, does two things and measures each apart:

1. a blast: one trigger to BENCH_GROWTH_BLAST (10,000) subscribers;
2. single-recipient traffic: BENCH_GROWTH_SINGLES (3,000) events of one subscriber each,
   triggered 20 at a time (``trigger_bulk``), so each goes by the outbox's own small batches;

and reports, per delivery, the worker's CPU time (its main process and its pool processes), the
CPU time of every PostgreSQL server process (backends, WAL writer, checkpointer, ...: the
producer's writes included) and the deliveries a second until every one was finished; then
the time of the activity API's first page (the organisation's 10 newest notifications). The first round runs on the empty tables; then
BENCH_GROWTH_ROWS (10,000,000) finished notifications, each with one sent delivery and one
attempt, are written into the same organisation's tables (server-side, by ``generate_series``,
in slices of a million: the fill takes minutes and about 12 GB), then ``VACUUM ANALYZE`` (what
autovacuum does on a server with its default settings; this machine runs with it off), and the
same round runs again. Target (#14): within 10% of the empty database.

Row ids in the fill take the dispatcher's form, time-ordered (BENCH_GROWTH_IDS=random: the
random ids of earlier releases). Environment also: BENCH_POSTGRES_URL, BENCH_REDIS_URL (see :mod:`bench.throughput`). Talks only
to loopback. Run: ``python -m bench growth``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.throughput import (
    LATENCY_MS,
    fake_provider,
    prepare_tenant,
    process,
    worker_command,
)
from bench.trickle import worker_cpu_seconds

SUBSCRIBERS = int(os.environ.get("BENCH_GROWTH_SUBSCRIBERS", "10000"))
BLAST = int(os.environ.get("BENCH_GROWTH_BLAST", "10000"))
SINGLES = int(os.environ.get("BENCH_GROWTH_SINGLES", "3000"))
ROWS = int(os.environ.get("BENCH_GROWTH_ROWS", "10000000"))
ROUNDS = int(os.environ.get("BENCH_GROWTH_ROUNDS", "2"))
FILL_SLICE = 1_000_000
SINGLES_PER_CALL = 20
DATABASE = "dispatcher_bench_growth"
OPEN = "('queued', 'retrying', 'sending')"


@dataclass
class Figures:
    deliveries: int
    seconds: float
    worker_main: float
    worker_pool: float
    postgres: float

    def line(self, label: str) -> str:
        per = 1000 / max(1, self.deliveries)
        worker = (self.worker_main + self.worker_pool) * per
        return (
            f"  {label:<36} {self.deliveries / self.seconds:>8,.0f}/s  worker {worker:.3f} ms "
            f"({self.worker_main * per:.3f} main, {self.worker_pool * per:.3f} pool)  "
            f"PostgreSQL {self.postgres * per:.3f} ms"
        )


def postgres_cpu_seconds() -> float:
    """User and system CPU time of every PostgreSQL server process on this machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        if name.startswith("postgres"):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def unfinished() -> bool:
    """Whether a delivery is still to be sent: one row looked up by the due index (a count by
    ``status NOT IN`` the terminal ones would scan the whole table, on the database CPU the
    benchmark measures)."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    with database().session() as session:
        found = session.scalar(sa.text(f"SELECT 1 FROM deliveries WHERE status IN {OPEN} LIMIT 1"))
    return found is not None


def measured(worker_pid: int, deliveries: int, start: Any) -> Figures:
    """Run ``start`` (which triggers ``deliveries`` deliveries) and wait for all of them."""
    worker_before, postgres_before = worker_cpu_seconds(worker_pid), postgres_cpu_seconds()
    began = time.perf_counter()
    start()
    while unfinished():
        time.sleep(0.25)
    seconds = time.perf_counter() - began
    worker_after, postgres_after = worker_cpu_seconds(worker_pid), postgres_cpu_seconds()
    return Figures(
        deliveries,
        seconds,
        worker_after[0] - worker_before[0],
        worker_after[1] - worker_before[1],
        postgres_after - postgres_before,
    )


def run_round(organisation: Any, worker_pid: int, label: str) -> list[str]:
    from dispatcher import trigger_bulk

    tag = f"{label}-{time.time_ns()}"

    def blast() -> None:
        trigger_bulk(organisation, [{"workflow": "bench", "payload": {"code": "1"},
                                     "to": [f"u{n % SUBSCRIBERS}" for n in range(BLAST)],
                                     "transaction_id": f"{tag}-blast"}])  # fmt: skip

    def singles() -> None:
        events = [{"workflow": "bench", "to": f"u{n % SUBSCRIBERS}", "payload": {"code": "2"},
                   "transaction_id": f"{tag}-{n}"} for n in range(SINGLES)]  # fmt: skip
        for start in range(0, SINGLES, SINGLES_PER_CALL):
            trigger_bulk(organisation, events[start : start + SINGLES_PER_CALL])

    blast_figures = measured(worker_pid, min(BLAST, SUBSCRIBERS), blast)
    single_figures = measured(worker_pid, SINGLES, singles)
    return [
        blast_figures.line(f"{label}: blast"),
        single_figures.line(f"{label}: singles"),
        f"  {label + ': activity, newest page':<36} {newest_page_ms(organisation):>8.1f} ms",
    ]


def newest_page_ms(organisation: Any) -> float:
    """Milliseconds of the activity API's first page (``GET /v1/notifications``, 10 newest
    of the organisation), its query as the route makes it; the median of 5."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database
    from models import Notification

    query = (
        sa.select(Notification)
        .where(Notification.organisation_id == organisation)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(11)
    )
    times = []
    with database().session() as session:
        for _ in range(5):
            began = time.perf_counter()
            session.scalars(query).all()
            times.append((time.perf_counter() - began) * 1000)
    return sorted(times)[2]


FILL = """
WITH params AS (
    SELECT (SELECT array_agg(id ORDER BY external_id) FROM subscribers
            WHERE organisation_id = :organisation) AS subscribers,
           (SELECT id FROM workflows WHERE organisation_id = :organisation) AS workflow,
           (SELECT id FROM workflow_steps WHERE workflow_id =
               (SELECT id FROM workflows WHERE organisation_id = :organisation)) AS step,
           (SELECT id FROM integrations WHERE organisation_id = :organisation) AS integration
), numbers AS (
    SELECT n, at, <notification> AS notification, <delivery> AS delivery, <attempt> AS attempt
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n,
         LATERAL (SELECT now() - interval '30 days' + n * :spacing * interval '1 second') AS t(at)
), notifications_written AS (
    INSERT INTO notifications (id, organisation_id, transaction_id, workflow_id,
        workflow_version, subscriber_id, payload, meta, status, created_at, updated_at)
    SELECT notification, :organisation, 'fill-' || n, params.workflow, 1,
           params.subscribers[1 + n % array_length(params.subscribers, 1)],
           jsonb_build_object('code', n::text), '{}', 'completed', at, at
    FROM numbers, params
), deliveries_written AS (
    INSERT INTO deliveries (id, organisation_id, notification_id, step_id, step_position,
        step_kind, channel_type, critical, status, attempts, integration_id, provider,
        provider_message_id, sent_at, content, meta, created_at, updated_at)
    SELECT delivery, :organisation, notification, params.step, 0, 'email',
           'email', false, 'sent', 1, params.integration, 'fake_http', 'fill-' || n, at,
           jsonb_build_object('to', 'u' || n || '@example.com', 'subject', 'Hi'), '{}', at, at
    FROM numbers, params
)
INSERT INTO delivery_attempts (id, organisation_id, delivery_id, integration_id, provider,
    outcome, http_status, latency_ms, meta, created_at)
SELECT attempt, :organisation, delivery, params.integration,
       'fake_http', 'sent', 202, 100.0, '{}', at
FROM numbers, params
"""


#: ``ordered``: as the dispatcher makes a row's id (:func:`models.ids.new_row_id`), its time in
#: milliseconds, then random bits; ``random``: version 4, as releases before made them.
ID_FORM = os.environ.get("BENCH_GROWTH_IDS", "ordered")


def row_id(kind: str) -> str:
    """SQL for the id of the ``kind`` row of fill number ``n`` made at ``at``, repeatable (the
    delivery names its notification, the attempt its delivery)."""
    digest = f"md5('{kind}' || n)"
    if ID_FORM == "random":
        return f"{digest}::uuid"
    milliseconds = "lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')"
    return (f"({milliseconds} || '7' || substr({digest}, 1, 3) || '8' "
            f"|| substr({digest}, 4, 15))::uuid")  # fmt: skip


def fill(organisation: Any) -> float:
    """Write :data:`ROWS` finished notifications (a delivery and an attempt each), made over
    the last 30 days in order; seconds."""
    import sqlalchemy as sa

    from dispatcher.runtime.resources import database

    began = time.perf_counter()
    for first in range(0, ROWS, FILL_SLICE):
        last = min(ROWS, first + FILL_SLICE) - 1
        with database().transaction() as session:
            session.execute(
                sa.text(FILL.replace("<notification>", row_id("n"))
                        .replace("<delivery>", row_id("d")).replace("<attempt>", row_id("a"))),
                {"organisation": organisation, "first": first, "last": last,
                 "spacing": 30 * 86400 / ROWS},
            )  # fmt: skip
        print(f"  filled {last + 1:,} of {ROWS:,} in {time.perf_counter() - began:,.0f} s",
              flush=True)  # fmt: skip
    engine = sa.create_engine(
        database().engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - began


def main() -> None:
    with fake_provider("fake-provider-growth.log") as url:
        organisation, env = prepare_tenant(url, SUBSCRIBERS, DATABASE, broker_db=12)
        print(f"2 cores; fake provider answering after {LATENCY_MS:g} ms; blast of "
              f"{min(BLAST, SUBSCRIBERS):,}, {SINGLES:,} single-recipient events; "
              f"then {ROWS:,} finished notifications written", flush=True)  # fmt: skip
        lines: list[str] = []
        with process(worker_command(), env, "growth-worker.log") as worker:
            time.sleep(4)  # start-up is not part of the figures
            run_round(organisation, worker.pid, "warm-up")
            for number in range(1, ROUNDS + 1):
                lines += run_round(organisation, worker.pid, f"empty, round {number}")
            print("\n".join(lines), flush=True)
        seconds = fill(organisation)
        print(f"  {ROWS:,} rows a table written and vacuumed in {seconds:,.0f} s", flush=True)
        with process(worker_command(), env, "growth-worker-full.log") as worker:
            time.sleep(4)
            run_round(organisation, worker.pid, "warm-up")
            for number in range(1, ROUNDS + 1):
                lines += run_round(organisation, worker.pid, f"{ROWS:,} rows, round {number}")
    print("\n" + "\n".join(lines))
