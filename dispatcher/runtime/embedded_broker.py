"""kombu's SQLAlchemy transport, tuned for the embedded SQLite broker.

kombu hands every transport option to ``create_engine``, so its own ``polling_interval`` option
cannot be set for this transport (the engine rejects it) and the worker would poll only once a
second. This subclass keeps engine options apart and puts SQLite in WAL mode so the producer and
the worker processes do not lock each other out.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqlalchemy
from sqlalchemy import Engine, create_engine

from dispatcher.runtime.sqlite import BUSY_TIMEOUT_SECONDS, tune_sqlite

TRANSPORT_PATH = "dispatcher.runtime.embedded_broker:Transport"
#: kombu takes only plain scheme names from a URL, so the transport is registered under an alias.
TRANSPORT_ALIAS = "dispatchersqla"
NOT_ENGINE_OPTIONS = frozenset(
    {
        "polling_interval",
        "queue_tablename",
        "message_tablename",
        "callback",
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "retry_errors",
        "visibility_timeout",
    }
)


class Channel(kombu_sqlalchemy.Channel):
    def _engine_from_config(self) -> Engine:
        conninfo: Any = self.connection.client
        options = {
            key: value
            for key, value in conninfo.transport_options.items()
            if key not in NOT_ENGINE_OPTIONS
        }
        options.setdefault("connect_args", {"timeout": BUSY_TIMEOUT_SECONDS})
        engine = create_engine(conninfo.hostname, **options)
        tune_sqlite(engine)
        return engine


class Transport(kombu_sqlalchemy.Transport):
    Channel = Channel


def kombu_url(broker_url: str) -> str:
    """``sqla+sqlite:///path`` -> the same database through this transport."""
    if broker_url.startswith("sqla+sqlite"):
        return f"{TRANSPORT_ALIAS}+{broker_url.removeprefix('sqla+')}"
    return broker_url


TRANSPORT_ALIASES.setdefault(TRANSPORT_ALIAS, TRANSPORT_PATH)
