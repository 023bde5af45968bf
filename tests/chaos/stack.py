"""A dispatcher stack of the test's own that faults can be injected into.

Each stack has its own PostgreSQL database (built by the migrations, dropped afterwards), its own
Redis database number (only that one is ever flushed), its own queue names, a :class:`TcpProxy` in
front of each service, a fresh fake provider, and worker and beat processes pointed at the proxies.
This process (the producer: ``trigger_bulk``, ``run_action``) is switched to the same settings
for the duration of the stack and switched back afterwards, so the rest of the suite is untouched.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
import sqlalchemy as sa

from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.dev.worker_process import running_beat, running_worker
from tests.chaos.proxy import TcpProxy
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL

#: Redis database of these tests only (on the suite's Redis server): it is flushed freely, so
#: nothing else may live there.
CHAOS_REDIS_URL = f"{REDIS_URL.rsplit('/', 1)[0]}/9"

#: Settings of every chaos stack: short waits so leases, retries and circuits act within a test.
BASE_SETTINGS = {
    "DISPATCHER_RETRY_BASE_DELAY": "0.2",
    "DISPATCHER_RETRY_MAX_DELAY": "1",
    "DISPATCHER_SEND_TIMEOUT": "1.5",
    "DISPATCHER_ENQUEUE_LEASE": "5",
    "DISPATCHER_SEND_LEASE": "8",
    "DISPATCHER_CIRCUIT_FAILURE_THRESHOLD": "5",
    "DISPATCHER_CIRCUIT_COOLDOWN": "2",
    "DISPATCHER_SWEEP_INTERVAL": "1",
    "DISPATCHER_DELIVERY_BATCH_SIZE": "50",
    "DISPATCHER_URL_ALLOWLIST": "127.0.0.1",
}

_counter = itertools.count(1)
#: ``application_name`` of the test's own database connections.
TEST_READER = "chaos-test-reader"


#: Put in the database URL that workers and producers use, to check no error message shows it
#: (a server that trusts loopback connections ignores it).
DATABASE_PASSWORD = "chaos-db-password-0451"


def with_port(
    url: str, host: str, port: int, path: str | None = None, password: str | None = None
) -> str:
    parts = urlsplit(url)
    netloc = f"{host}:{port}"
    if parts.username:
        secret = password or parts.password
        credentials = parts.username + (f":{secret}" if secret else "")
        netloc = f"{credentials}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc, path=path if path is not None else parts.path))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Celery's pool children and anything they started)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: read after the last ")".
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def rss_bytes(pids: list[int]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[pid] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return sizes


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores), from ``/proc/stat``."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class BackendClock:
    """CPU time used by the PostgreSQL server processes serving one database (the test's own
    reading connections left out), since first seen."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def seconds(self) -> float:
        with self.engine.connect() as connection:
            pids = connection.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name <> :reader"
                ),
                {"reader": TEST_READER},
            ).scalars()
            for pid in pids:
                used = cpu_seconds([pid])
                self._first.setdefault(pid, used)
                self._last[pid] = used
        return sum(self._last[pid] - self._first[pid] for pid in self._last)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    hostname: str
    log_file: Path
    exit_stack: ExitStack

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@dataclass
class Stack:
    workdir: Path
    environment: dict[str, str]
    database_url: str
    redis_url: str
    pg_proxy: TcpProxy
    redis_proxy: TcpProxy
    fake: FakeProviderServer
    concurrency: int
    workers: list[Worker] = field(default_factory=list)
    _engine: sa.Engine | None = None

    # --- processes -------------------------------------------------------------------------------

    def start_worker(self, timeout: float = 60.0) -> Worker:
        number = len(self.workers) + 1
        hostname = f"chaos-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        log_file = self.workdir / f"worker-{number}.log"
        exit_stack = ExitStack()
        process = exit_stack.enter_context(
            running_worker(
                concurrency=self.concurrency,
                log_file=log_file,
                environment=self.environment,
                hostname=hostname,
            )
        )
        worker = Worker(process, hostname, log_file, exit_stack)
        self.workers.append(worker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"worker exited at start-up:\n{worker.log()[-3000:]}")
            if log_file.exists() and " ready." in worker.log():
                return worker
            time.sleep(0.1)
        raise AssertionError(f"worker not ready within {timeout:g}s:\n{worker.log()[-3000:]}")

    @property
    def worker(self) -> Worker:
        return self.workers[-1]

    def kill_worker(self) -> int:
        """SIGKILL the worker and every process below it, all frozen first so none can react or
        start a replacement; returns how many processes died."""
        worker = self.worker
        stopped: list[int] = []
        for _ in range(3):  # catch anything forked while the first ones were being stopped
            for pid in worker.pids:
                if pid not in stopped:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        worker.exit_stack.close()
        return len(stopped)

    def logs(self) -> str:
        return "".join(worker.log() for worker in self.workers if worker.log_file.exists())

    # --- data ------------------------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """A direct connection for the test's own reads (not through the proxy)."""
        if self._engine is None:
            self._engine = sa.create_engine(
                self.database_url, pool_size=2, connect_args={"application_name": TEST_READER}
            )
        return self._engine

    def autovacuum_off(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(sa.text("SHOW autovacuum")).scalar_one() == "off"

    def vacuum(self, *tables: str) -> None:
        """What autovacuum does on a server that has it on: reclaim the dead row versions that
        every status change leaves behind, and refresh the planner's statistics."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text(f"VACUUM (ANALYZE) {', '.join(tables)}"))

    def redis(self) -> redis.Redis:
        """The stack's Redis database, directly (not through the proxy)."""
        return redis.Redis.from_url(self.redis_url)

    def flush_redis(self) -> None:
        client = self.redis()
        try:
            client.flushdb()
        finally:
            client.close()

    def status_counts(self, organisation_id: uuid.UUID) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT status, count(*) FROM deliveries WHERE organisation_id = :org "
                    "GROUP BY status"
                ),
                {"org": organisation_id},
            ).all()
        return {str(status): int(number) for status, number in rows}

    def wait_until_terminal(
        self, organisation_id: uuid.UUID, expected: int, timeout: float = 180.0
    ) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.status_counts(organisation_id)
            done = sum(counts.get(status, 0) for status in ("sent", "failed", "skipped", "unknown"))
            if sum(counts.values()) >= expected and done == sum(counts.values()):
                return counts
            if self.worker.process.poll() is not None:
                raise AssertionError(f"the worker stopped: {counts}\n{self.worker.log()[-3000:]}")
            time.sleep(0.25)
        raise AssertionError(f"deliveries not terminal within {timeout:g}s: {counts}")


def database_name() -> str:
    return f"chaos_{os.getpid()}_{next(_counter)}"


def _admin() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def own_database() -> Iterator[str]:
    from models.migrate import upgrade

    name = database_name()
    admin = _admin()
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = with_port(POSTGRES_ADMIN_URL, *_host_port(POSTGRES_ADMIN_URL), path=f"/{name}")
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


@contextmanager
def producer_settings(environment: Mapping[str, str]) -> Iterator[None]:
    """This process produces with ``environment``'s settings inside the block, then as before."""
    from dispatcher.celery_app import app

    saved = {key: value for key, value in os.environ.items() if key.startswith("DISPATCHER_")}
    # The result backend is built once from the settings and kept: put the suite's back after.
    backend = (app._backend_cache, getattr(app._local, "backend", None))
    _switch(environment)
    app._backend_cache, app._local.backend = None, None
    try:
        yield
    finally:
        _switch(saved)
        app._backend_cache, app._local.backend = backend


def _switch(environment: Mapping[str, str]) -> None:
    from kombu import pools as kombu_pools

    from dispatcher.celery_app import app, celery_config
    from dispatcher.config import get_settings, reset_settings
    from dispatcher.runtime import resources as runtime
    from dispatcher.sending import batch

    for key in [key for key in os.environ if key.startswith("DISPATCHER_")]:
        del os.environ[key]
    os.environ.update({k: v for k, v in environment.items() if k.startswith("DISPATCHER_")})
    reset_settings()
    runtime.reset()
    batch.circuit_store.cache_clear()
    # The Celery app keeps its broker connection pools: drop them so the next message goes to the
    # broker of the new settings (what Celery itself does after a fork).
    pool = app._pool
    if pool is not None:
        pool.force_close_all()
    amqp = app.__dict__.get("amqp")
    if amqp is not None and amqp._producer_pool is not None:
        amqp._producer_pool.force_close_all()
        amqp._producer_pool = None
    app._pool = None
    # kombu keeps producer pools per connection in a registry of its own: a closed pool left
    # there would be handed out again when the settings switch back to an earlier broker.
    kombu_pools.reset()
    app.conf.update(celery_config(get_settings()))
    if amqp is not None:
        # The queues (and the router holding them) are built once from the configuration: a
        # RabbitMQ stack's queues are declared otherwise (quorum, topic exchanges) than Redis's.
        for cached in ("queues", "default_queue", "router", "default_exchange"):
            amqp.__dict__.pop(cached, None)
        amqp._rtable = None


@contextmanager
def chaos_stack(
    workdir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    concurrency: int = 2,
    proxied: bool = True,
    broker_url: str | None = None,
) -> Iterator[Stack]:
    """Everything started (beat and one worker included) and torn down again.

    ``proxied=False``: workers and producer talk to the services directly (a long run without
    faults need not pay for the proxies' hops). ``broker_url``: a Redis server or RabbitMQ vhost
    of the test's own, used directly (the test kills or empties it itself); Redis stays the
    store of circuits and rate limits.
    """
    with ExitStack() as stack:
        database_url = stack.enter_context(own_database())
        host, port = _host_port(database_url)
        pg_proxy = TcpProxy(host, port).start()
        stack.callback(pg_proxy.stop)
        redis_parts = urlsplit(CHAOS_REDIS_URL)
        redis_proxy = TcpProxy(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
        redis_proxy.start()
        stack.callback(redis_proxy.stop)
        fake = FakeProviderServer(seed=7).start()
        stack.callback(fake.stop)
        run = next(_counter)
        if proxied:
            broker = with_port(CHAOS_REDIS_URL, "127.0.0.1", redis_proxy.port)
            database = with_port(
                database_url, "127.0.0.1", pg_proxy.port, password=DATABASE_PASSWORD
            )
        else:
            broker, database = CHAOS_REDIS_URL, database_url
        redis_url = CHAOS_REDIS_URL
        if broker_url is not None:
            broker = broker_url
            if broker_url.startswith("redis://"):
                redis_url = broker_url
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("DISPATCHER_")
        }
        environment.update(
            {
                **BASE_SETTINGS,
                "DISPATCHER_DATABASE_URL": database,
                "DISPATCHER_BROKER_URL": broker,
                "DISPATCHER_RESULT_BACKEND": redis_url if broker_url else broker,
                "DISPATCHER_REDIS_URL": redis_url if broker_url else broker,
                "DISPATCHER_ENCRYPTION_KEYS": os.environ["DISPATCHER_ENCRYPTION_KEYS"],
                "DISPATCHER_DATA_DIR": str(workdir),
                "DISPATCHER_ACTION_QUEUE": f"chaos-{os.getpid()}-{run}-actions",
                "DISPATCHER_DELIVERY_QUEUE": f"chaos-{os.getpid()}-{run}-deliveries",
                "DISPATCHER_CRITICAL_QUEUE": f"chaos-{os.getpid()}-{run}-critical",
                **(settings or {}),
            }
        )
        result = Stack(
            workdir=workdir,
            environment=environment,
            database_url=database_url,
            redis_url=redis_url,
            pg_proxy=pg_proxy,
            redis_proxy=redis_proxy,
            fake=fake,
            concurrency=concurrency,
        )
        result.flush_redis()
        stack.callback(result.flush_redis)
        stack.enter_context(producer_settings(environment))

        def close_everything() -> None:
            for worker in result.workers:
                worker.exit_stack.close()
            if result._engine is not None:
                result._engine.dispose()

        stack.callback(close_everything)
        stack.enter_context(
            running_beat(
                schedule_file=workdir / "beat-schedule",
                log_file=workdir / "beat.log",
                environment=environment,
            )
        )
        result.start_worker()
        yield result
