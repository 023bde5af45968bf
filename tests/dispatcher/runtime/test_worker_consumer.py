"""The worker's consumer survives a broken broker connection that fails to close (the crash the
broker-restart chaos test met: kombu's Redis channel reading a detached transport)."""

from __future__ import annotations

import logging

import pytest
from celery.worker.consumer import Consumer

from dispatcher.celery_app import app
from dispatcher.runtime.worker_consumer import ReconnectingConsumer


class BrokenConnection:
    """A connection in the state kombu left it in: collect works, close raises."""

    def __init__(self) -> None:
        self.collected = False
        self.close_tried = False

    def collect(self, socket_timeout: float | None = None) -> None:
        self.collected = True

    def close(self) -> None:
        self.close_tried = True
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    connection_errors: tuple[type[BaseException], ...] = (ConnectionError,)
    channel_errors: tuple[type[BaseException], ...] = ()
    # Read by Celery's socket bounding before the collect.
    transport = None
    _connection = None


def consumer_of(kind: type[Consumer], connection: BrokenConnection) -> Consumer:
    # The consumer's constructor builds the worker's whole blueprint; the error path reads only
    # the application and the connection.
    consumer = object.__new__(kind)
    consumer.app = app
    consumer.connection = connection
    return consumer


def test_the_worker_uses_the_reconnecting_consumer() -> None:
    assert app.conf.worker_consumer == "dispatcher.runtime.worker_consumer:ReconnectingConsumer"


def test_celerys_own_consumer_lets_the_close_failure_escape() -> None:
    # What stops the worker without the subclass: if Celery ever catches this itself, the
    # subclass can go.
    with pytest.raises(AttributeError):
        consumer_of(Consumer, BrokenConnection()).on_connection_error_after_connected(
            ConnectionError("lost")
        )


def test_a_close_failure_is_logged_and_the_connection_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = BrokenConnection()
    consumer = consumer_of(ReconnectingConsumer, connection)
    with caplog.at_level(logging.WARNING, logger="dispatcher.runtime.worker_consumer"):
        consumer.on_connection_error_after_connected(ConnectionError("lost"))
    assert connection.collected and connection.close_tried
    assert consumer.connection is None
    assert "did not close cleanly (AttributeError)" in caplog.text
    assert "hostname" not in caplog.text
