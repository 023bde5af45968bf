"""The worker's broker consumer: Celery's own, made to survive a broken connection that fails to
close.

When the broker connection drops, Celery (5.7) collects the connection and then closes it,
ignoring only the transport's connection errors. kombu's Redis channel can raise something else
there: closing a channel whose transport the collect already detached asks for a new client,
and building one reads the detached transport's ``client``: ``AttributeError: 'NoneType' object
has no attribute 'hostname'`` (kombu issues #582 and #970 show the same trace). The error
escapes the consumer's restart loop and the whole worker exits: a broker restart becomes a
worker outage. Seen once in the broker-restart chaos test, in one CI run of the last several.

Here a failed close is logged and the reconnect goes on, as it does when the close succeeds:
the connection is dropped either way, and what the broken channel could not hand back to the
broker (its unacknowledged messages) comes back through the broker's visibility timeout or the
outbox sweeper, as after any lost connection.

Enabled by ``worker_consumer`` in :mod:`dispatcher.celery_app`.
"""

from __future__ import annotations

import logging

from celery.worker.consumer import Consumer

logger = logging.getLogger(__name__)


class ReconnectingConsumer(Consumer):
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except Exception as failure:  # any failure here would stop the worker
            # Celery hands the connection over (``self.connection = None``) before it closes it;
            # this makes sure of it whatever step failed.
            self.connection = None
            logger.warning(
                "consumer: the broken broker connection did not close cleanly (%s); "
                "reconnecting anyway",
                type(failure).__name__,
            )
