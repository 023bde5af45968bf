"""Configuration from the environment (``DISPATCHER_`` prefix) and an optional ``.env`` file.

With nothing set the dispatcher runs embedded: a SQLite database file, Celery's SQLAlchemy broker
transport on another SQLite file, and a local encryption key file, all under ``data_dir``. The key
file always lives beside the SQLite database it seals credentials for (also when
``DISPATCHER_DATABASE_URL`` names a SQLite file elsewhere), so every process that opens that
database finds the same key. With URLs set it uses PostgreSQL and Redis, and then encryption keys
must be given explicitly. The broker may be Redis or RabbitMQ (``amqp://``); circuits, rate limits
and results always live in Redis: ``DISPATCHER_REDIS_URL``, by default the broker's URL when that
is Redis.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from models import ChannelType, OnAmbiguous
from providers.retry_after import MAX_RETRY_AFTER

REDIS_SCHEMES = ("redis://", "rediss://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("var")
    database_url: str | None = None
    broker_url: str | None = None
    #: Redis of the circuit breaker, the rate limits and (by default) results. Defaults to the
    #: broker's URL when the broker is Redis; required for both with a RabbitMQ broker.
    redis_url: str | None = None
    result_backend: str | None = None
    #: Fernet keys, comma-separated: the first encrypts, all decrypt (rotation).
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    action_queue: str = "actions"
    delivery_queue: str = "deliveries"
    critical_queue: str = "critical"
    #: Provider callbacks' events wait here for the worker that applies them.
    lifecycle_queue: str = "lifecycle"

    #: How often a task that lost its database connection is retried before it answers an Err.
    action_max_retries: int = Field(default=5, ge=0)
    #: Seconds an ``enqueue_action(...).get()`` waits by default.
    result_timeout: float = Field(default=30.0, gt=0)
    #: How often the embedded (SQLite) broker polls for messages, in seconds.
    embedded_polling_interval: float = Field(default=0.1, gt=0)

    #: One JSON object per log line (log pipelines) instead of text (people).
    log_json: bool = False
    #: Level of the root logger. Under Celery it wins over ``--loglevel`` only when set.
    log_level: str = "INFO"

    # --- sending -------------------------------------------------------------------------------
    #: Integrations of this environment are used (``production``, ``staging``, ...).
    environment: str = "production"
    #: Deliveries carried by one Celery task.
    delivery_batch_size: int = Field(default=200, ge=1, le=5000)
    #: Delivery messages that wait for a busy worker's pool process are sent together, as one
    #: batch of up to ``delivery_batch_size`` (each acknowledged once its rows are written).
    delivery_coalescing: bool = True
    #: Pool processes of each worker that normal batches may not occupy: a critical batch finds
    #: one free during a blast. Ignored for a worker of one process.
    critical_reserved_processes: int = Field(default=1, ge=0)
    #: A forked worker process moves the heap it inherited out of the garbage collector's reach
    #: (``gc.freeze``), as an API process does once its application is built; a worker process
    #: collects its youngest generation after this many allocations (0: Python's default).
    gc_freeze_after_fork: bool = True
    gc_gen0_threshold: int = Field(default=0, ge=0)
    #: Sends in flight at once per integration inside one worker process.
    send_concurrency_per_integration: int = Field(default=100, ge=1)
    #: Seconds one provider request may take, from connecting to the answer's last byte.
    send_timeout: float = Field(default=10.0, gt=0)
    #: Seconds a batch may spend rendering, and then starting sends; what is not rendered or
    #: sent by then is retried (no attempt counted), so a slow tenant's batch cannot hold the
    #: worker process, and the other tenants' batches queued behind it, for long.
    batch_render_deadline: float = Field(default=5.0, gt=0)
    batch_send_deadline: float = Field(default=10.0, gt=0)
    #: Per channel, what a delivery becomes when a provider gave no answer after the request may
    #: have reached it, for integrations whose settings do not say (``on_ambiguous``): JSON such
    #: as ``{"sms": "record_unknown"}``. A channel not named resends (at least once).
    on_ambiguous_by_channel: dict[ChannelType, OnAmbiguous] = Field(default_factory=dict)
    #: Attempts on one integration before falling back to the next (retryable failures).
    max_attempts_per_integration: int = Field(default=3, ge=1, le=20)
    #: Attempts on one delivery over all integrations before it fails.
    max_attempts_per_delivery: int = Field(default=12, ge=1, le=100)
    #: Posts of one outbound webhook event to its endpoint before it is given up (``failed``);
    #: with the default backoff, 25 attempts span about two hours.
    webhook_max_attempts: int = Field(default=25, ge=1, le=200)
    #: Exponential backoff: base * 2**(attempt-1), capped, with full jitter; seconds.
    retry_base_delay: float = Field(default=2.0, ge=0)
    retry_max_delay: float = Field(default=300.0, ge=0)
    #: Seconds of a provider's ``Retry-After`` honoured at most: the integration gets no request
    #: for that long (its deliveries fall back, or wait); a longer pause is cut to this, and the
    #: integration shows ``error`` until the probe or a send finds it answering again. Finite:
    #: at most ``MAX_RETRY_AFTER`` (2**31 s), so no date computed from it overflows.
    retry_after_cap: float = Field(default=3600.0, ge=0, le=MAX_RETRY_AFTER, allow_inf_nan=False)
    #: A retry due sooner than this is re-enqueued with a Celery countdown; later ones are left
    #: to the outbox sweeper (no long ETAs held in worker memory).
    retry_countdown_limit: float = Field(default=30.0, ge=0)
    #: Seconds a delivery handed to the broker stays reserved before the sweeper may re-enqueue
    #: it (a lost broker message is recovered after this).
    enqueue_lease: float = Field(default=120.0, gt=0)
    #: Seconds a delivery being sent stays reserved; the worker sending it renews the reservation
    #: every third of this, so it bounds only how long a worker killed mid-send holds it.
    send_lease: float = Field(default=120.0, gt=0)
    #: Consecutive failures that open an integration's circuit, and how long it stays open.
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown: float = Field(default=30.0, gt=0)
    #: Seconds a batch may wait for rate-limited integrations' turns (within the send lease);
    #: a send whose turn comes later is retried then, with no attempt counted. The worker
    #: process sends nothing else meanwhile, hence the bound.
    rate_limit_max_wait: float = Field(default=10.0, ge=0)
    #: Triggers that make more due deliveries than this are fed to the broker by the outbox
    #: pump in per-organisation rounds instead of all at once (fairness between tenants).
    direct_enqueue_limit: int = Field(default=1000, ge=0)
    #: Deliveries the pump hands to the broker per organisation per round.
    pump_round_size: int = Field(default=1000, ge=1)
    #: How often beat runs the outbox sweeper, in seconds.
    sweep_interval: float = Field(default=5.0, gt=0)

    # --- beat jobs -------------------------------------------------------------------------------
    #: How often beat fires due schedules, in seconds, and schedules read per query.
    schedule_interval: float = Field(default=10.0, gt=0)
    schedule_batch_size: int = Field(default=100, ge=1, le=10_000)
    #: Notifications, deliveries and attempts older than this many days are purged once finished.
    retention_days: int = Field(default=30, ge=1)
    #: How often beat purges old delivery records, in seconds, and rows deleted per transaction.
    retention_interval: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=50_000)
    #: How often beat probes integrations whose circuit has cooled down, in seconds.
    probe_interval: float = Field(default=60.0, gt=0)

    #: Hosts, addresses or networks (CIDR) that webhook and provider URLs may point at although
    #: they are private or loopback (``127.0.0.1,10.0.0.0/8``). Empty: only public addresses.
    url_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- HTTP API (``dispatcher api``) ------------------------------------------------------------
    #: Where ``dispatcher api`` listens. Port 3000 is the port of Novu's own API, so an SDK's
    #: self-hosted server URL carries over; loopback by default (put a proxy in front).
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=3000, ge=1, le=65535)
    #: Uvicorn worker processes of ``dispatcher api`` (each one is stateless).
    api_workers: int = Field(default=1, ge=1)
    #: Largest request body accepted (413 above): a bulk trigger of 100 events of 64 KiB fits.
    api_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1)
    #: Requests per second per API key, shared by every API process through Redis, and the
    #: burst an idle key may make at once (429 with ``Retry-After`` beyond).
    api_rate_limit_per_second: float = Field(default=100.0, gt=0)
    api_rate_limit_burst: int = Field(default=200, ge=1)
    #: Seconds an API process trusts a key it has looked up: a key revoked by another process
    #: (``dispatcher api-keys revoke``) is refused everywhere within this time (at once by the
    #: process that revoked it); 0 looks every key up on every request.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    #: Seconds the first answer to an ``Idempotency-Key`` is replayed for.
    api_idempotency_ttl: float = Field(default=24 * 3600.0, gt=0)
    #: The API's URL as providers call it (``https://notify.example.com``), behind a proxy:
    #: providers that sign the URL (Twilio, Plivo) are verified against it. Unset: the URL of
    #: the request as it arrived.
    public_url: str | None = None
    #: Serve ``/inbox/example?applicationIdentifier=&subscriberId=``: a page showing any
    #: subscriber's inbox (it signs the id itself). For trying it out; never in production.
    inbox_example: bool = False
    #: Subscribers written per transaction by a broadcast trigger.
    broadcast_chunk_size: int = Field(default=1000, ge=1, le=10_000)

    # --- limits on producer input ----------------------------------------------------------------
    max_payload_bytes: int = Field(default=64 * 1024, ge=1)
    max_recipients_per_trigger: int = Field(default=100_000, ge=1)
    #: Seconds a template render may take before it is stopped.
    template_render_timeout: float = Field(default=1.0, gt=0)
    max_rendered_length: int = Field(default=200_000, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(REDIS_SCHEMES):
            raise ValueError("DISPATCHER_REDIS_URL must be a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _redis_beside_amqp(self) -> Settings:
        if self.uses_amqp_broker and self.redis_url is None:
            raise ValueError(
                "DISPATCHER_REDIS_URL is required with a RabbitMQ broker: circuits, rate limits "
                "and results are kept in Redis"
            )
        return self

    @field_validator("url_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'dispatcher.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def resolved_redis_url(self) -> str | None:
        """The Redis of circuits and rate limits; ``None``: kept per process (embedded)."""
        if self.redis_url:
            return self.redis_url
        broker = self.resolved_broker_url
        return broker if broker.startswith(REDIS_SCHEMES) else None

    @property
    def uses_amqp_broker(self) -> bool:
        return self.resolved_broker_url.startswith(AMQP_SCHEMES)

    @property
    def resolved_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        return self.resolved_redis_url or f"db+sqlite:///{self.data_dir / 'results.sqlite3'}"

    @property
    def is_embedded(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def uses_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("sqla+sqlite")

    @property
    def sqlite_file(self) -> Path | None:
        """The database file when the database is SQLite on disk, else ``None``."""
        if not self.is_embedded:
            return None
        name = make_url(self.resolved_database_url).database
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(name)

    @property
    def key_file(self) -> Path:
        """The embedded key file: beside the SQLite database, else in ``data_dir``."""
        database_file = self.sqlite_file
        directory = database_file.parent if database_file is not None else self.data_dir
        return directory / "encryption.key"

    def ensure_data_dir(self) -> None:
        if self.is_embedded or self.uses_embedded_broker:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.sqlite_file is not None:
            self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()


def environment_snapshot() -> dict[str, str]:
    """The ``DISPATCHER_`` variables, to hand to a child process."""
    return {key: value for key, value in os.environ.items() if key.startswith("DISPATCHER_")}
