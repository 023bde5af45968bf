"""Real-service fixtures: PostgreSQL, Redis and RabbitMQ on loopback, and a real Celery worker
process.

Locally a missing service skips the tests that need it; under CI (``CI=true``) it fails them, so
a green CI run always means those tests ran. The producer side of the tests (this process) and the
worker processes share one configuration, set here before ``dispatcher`` is imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

POSTGRES_ADMIN_URL = os.environ.get(
    "DISPATCHER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
POSTGRES_TEST_DATABASE = f"dispatcher_test_{os.getpid()}"
REDIS_URL = os.environ.get("DISPATCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: RabbitMQ without a vhost: each test that uses it adds a vhost of its own and deletes it after.
RABBITMQ_URL = os.environ.get("DISPATCHER_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
TEST_KEY = Fernet.generate_key().decode("ascii")
DATA_DIR = Path(tempfile.mkdtemp(prefix="dispatcher-tests-"))
if not os.environ.get("DISPATCHER_TEST_KEEP_DATA"):
    atexit.register(shutil.rmtree, DATA_DIR, ignore_errors=True)


def _test_database_url() -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{POSTGRES_TEST_DATABASE}"


TEST_ENVIRONMENT = {
    "DISPATCHER_DATABASE_URL": _test_database_url(),
    "DISPATCHER_BROKER_URL": REDIS_URL,
    "DISPATCHER_RESULT_BACKEND": REDIS_URL,
    "DISPATCHER_ENCRYPTION_KEYS": TEST_KEY,
    "DISPATCHER_DATA_DIR": str(DATA_DIR),
    # Queue names of this run only, so a leftover worker of another run takes nothing.
    "DISPATCHER_ACTION_QUEUE": f"actions-{os.getpid()}",
    "DISPATCHER_DELIVERY_QUEUE": f"deliveries-{os.getpid()}",
    "DISPATCHER_CRITICAL_QUEUE": f"critical-{os.getpid()}",
    "DISPATCHER_LIFECYCLE_QUEUE": f"lifecycle-{os.getpid()}",
    # Short waits so retries, leases, circuits and the sweeper act within a test's patience.
    "DISPATCHER_RETRY_BASE_DELAY": "0.2",
    "DISPATCHER_RETRY_MAX_DELAY": "1",
    "DISPATCHER_SEND_TIMEOUT": "1.5",
    "DISPATCHER_ENQUEUE_LEASE": "3",
    "DISPATCHER_SEND_LEASE": "6",
    "DISPATCHER_CIRCUIT_FAILURE_THRESHOLD": "5",
    "DISPATCHER_CIRCUIT_COOLDOWN": "2",
    "DISPATCHER_SWEEP_INTERVAL": "0.5",
    "DISPATCHER_DELIVERY_BATCH_SIZE": "50",
    "DISPATCHER_PUMP_ROUND_SIZE": "100",
    # Tests call the circuit probe themselves; beat's would race the circuit test.
    "DISPATCHER_PROBE_INTERVAL": "3600",
    # The local fake provider listens on loopback, which the URL guard refuses otherwise.
    "DISPATCHER_URL_ALLOWLIST": "127.0.0.1",
}
os.environ.update(TEST_ENVIRONMENT)


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_missing(name: str, error: Exception) -> None:
    message = f"{name} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}; under CI a missing service is a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, built by the Alembic migrations."""
    import sqlalchemy as sa

    from models.migrate import upgrade

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{POSTGRES_TEST_DATABASE}"'))
            connection.execute(sa.text(f'CREATE DATABASE "{POSTGRES_TEST_DATABASE}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        service_missing("PostgreSQL", exc)
    url = _test_database_url()
    upgrade(url)
    yield url
    from dispatcher.runtime.resources import reset

    reset()
    with admin.connect() as connection:
        connection.execute(
            sa.text(f'DROP DATABASE IF EXISTS "{POSTGRES_TEST_DATABASE}" WITH (FORCE)')
        )
    admin.dispose()


@pytest.fixture(scope="session")
def sweeper_free_database_url(postgres_url: str) -> Iterator[str]:
    """A second migrated database of this run that no worker or beat of the session uses."""
    import sqlalchemy as sa

    from models.migrate import upgrade

    name = f"{POSTGRES_TEST_DATABASE}_alone"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, _, _ = postgres_url.rpartition("/")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sweeper_free_database(
    sweeper_free_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point this process at :func:`sweeper_free_database_url` for one test.

    The session's worker runs beat, which sweeps the shared database every half second: a test
    that reserves due rows itself and asserts which it got would race that sweeper."""
    from dispatcher.config import reset_settings
    from dispatcher.runtime.resources import reset

    monkeypatch.setenv("DISPATCHER_DATABASE_URL", sweeper_free_database_url)
    reset_settings()
    reset()
    yield sweeper_free_database_url
    monkeypatch.undo()
    reset_settings()
    reset()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """RabbitMQ's URL without a vhost, once it answers (see :func:`rabbitmq_vhost`)."""
    from kombu import Connection

    connection = Connection(f"{RABBITMQ_URL}/", connect_timeout=2)
    try:
        connection.ensure_connection(max_retries=1)
    except Exception as exc:
        service_missing("RabbitMQ", exc)
    finally:
        connection.release()
    if shutil.which("rabbitmqctl") is None:
        service_missing("rabbitmqctl", FileNotFoundError("rabbitmqctl is not on PATH"))
    return RABBITMQ_URL


@contextmanager
def rabbitmq_vhost(base_url: str) -> Iterator[RabbitVhost]:
    """A RabbitMQ vhost of this test only (queues, exchanges and connections), deleted after."""
    vhost = RabbitVhost(f"dispatcher-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", base_url)
    vhost.create()
    try:
        yield vhost
    finally:
        vhost.delete()


@dataclass(frozen=True)
class RabbitVhost:
    name: str
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.name}"

    def create(self) -> None:
        _rabbitmqctl("add_vhost", self.name)
        _rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    def delete(self) -> None:
        """Like a broker restarted empty, for this vhost alone: every connection to it is closed
        and its queues and messages are gone."""
        _rabbitmqctl("delete_vhost", self.name)


def _rabbitmqctl(*arguments: str) -> None:
    subprocess.run(
        ["rabbitmqctl", "-q", *arguments],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def worker(postgres_url: str, redis_url: str) -> Iterator[str]:
    """A real ``celery -A dispatcher worker`` process (prefork, 2 children) on PG and Redis;
    the value is its hostname, for remote control commands addressed to this worker alone."""
    from dispatcher.celery_app import app
    from dispatcher.dev.worker_process import running_beat, running_worker

    hostname = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_file = DATA_DIR / "worker.log"
    with (
        running_worker(concurrency=2, log_file=log_file, hostname=hostname) as process,
        running_beat(schedule_file=DATA_DIR / "beat-schedule", log_file=DATA_DIR / "beat.log"),
    ):
        for _ in range(60):
            if process.poll() is not None:
                pytest.fail(f"the worker exited at start-up:\n{log_file.read_text()[-3000:]}")
            if app.control.ping(destination=[hostname], timeout=0.5):
                break
        else:
            pytest.fail(f"the worker did not answer a ping within 30 s; see {log_file}")
        yield hostname


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[Any]:
    """The local fake provider server, in a thread of this process."""
    from dispatcher.dev.fakeserver import FakeProviderServer

    server = FakeProviderServer(seed=7).start()
    yield server
    server.stop()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``DISPATCHER_*`` variables for one test; the settings are read again."""
    from dispatcher.config import reset_settings

    def apply(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"DISPATCHER_{name.upper()}", str(value))
        reset_settings()

    yield apply
    monkeypatch.undo()
    reset_settings()


@pytest.fixture
def register_provider() -> Iterator[Callable[..., None]]:
    """Register provider classes in this process's default registry for one test; they are
    taken out after it, so later tests (those listing every provider) see the registry as the
    application has it."""
    from providers.registry import default_registry

    names: list[str] = []

    def register(*provider_classes: type[Any]) -> None:
        for provider_class in provider_classes:
            default_registry.register(provider_class)
            names.append(provider_class.name)

    yield register
    for name in names:
        default_registry.unregister(name)


@pytest.fixture
def organisation_id(postgres_url: str) -> uuid.UUID:
    from dispatcher.organisations import create_organisation

    return create_organisation(f"Org {uuid.uuid4().hex[:6]}")


#: Modules run before the rest of the suite, after the chaos tests (which bring their own stack).
#: Flower follows the session worker's live events, which every earlier test adds to (the beat
#: sweeping what those tests left, every producer's task-sent events): in a whole-suite run
#: Flower has trailed that stream by minutes, while alone it shows a task within a second. Run
#: before the others, it sees the worker as an operator's Flower does.
RUN_FIRST = ("tests/chaos/", "tests/ops/test_flower.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (n for n, path in enumerate(RUN_FIRST) if item.nodeid.startswith(path)),
            len(RUN_FIRST),
        )

    items.sort(key=rank)  # a stable sort: within a rank the order stays as collected
