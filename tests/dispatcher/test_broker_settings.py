"""Which broker, which Redis: the settings and the Celery configuration they make."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dispatcher.celery_app import celery_config
from dispatcher.config import Settings

AMQP = "amqp://guest:guest@127.0.0.1:5672/dispatcher"
REDIS = "redis://127.0.0.1:6379/3"


def test_a_redis_broker_is_also_the_store_of_circuits_rate_limits_and_results() -> None:
    settings = Settings(broker_url=REDIS, redis_url=None, result_backend=None)
    assert settings.resolved_redis_url == REDIS
    assert settings.resolved_result_backend == REDIS


def test_a_rabbitmq_broker_keeps_circuits_rate_limits_and_results_in_the_redis_url() -> None:
    settings = Settings(broker_url=AMQP, redis_url=REDIS, result_backend=None)
    assert settings.resolved_redis_url == REDIS
    assert settings.resolved_result_backend == REDIS


def test_a_rabbitmq_broker_without_a_redis_url_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="DISPATCHER_REDIS_URL is required"):
        Settings(broker_url=AMQP, redis_url=None)


def test_a_redis_url_that_is_not_redis_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="DISPATCHER_REDIS_URL must be a redis://"):
        Settings(broker_url=AMQP, redis_url=AMQP)


def test_on_rabbitmq_the_queues_are_quorum_queues_on_topic_exchanges_published_with_confirms() -> (
    None
):
    config = celery_config(Settings(broker_url=AMQP, redis_url=REDIS))
    assert config["broker_transport_options"] == {"confirm_publish": True}
    assert [
        (queue.exchange.type, queue.routing_key, queue.queue_arguments)
        for queue in config["task_queues"]
    ] == [
        (queue.exchange.type, queue.name, {"x-queue-type": "quorum"})
        for queue in config["task_queues"]
    ]
    assert {queue.exchange.type for queue in config["task_queues"]} == {"topic"}


def test_on_redis_the_queues_stay_classic_on_direct_exchanges() -> None:
    config = celery_config(Settings(broker_url=REDIS))
    assert {queue.exchange.type for queue in config["task_queues"]} == {"direct"}
    assert {queue.queue_arguments for queue in config["task_queues"]} == {None}
    assert config["broker_transport_options"]["health_check_interval"] > 0


@pytest.mark.parametrize("broker", [REDIS, AMQP])
def test_a_worker_waits_out_a_broker_outage_of_any_length(broker: str) -> None:
    config = celery_config(Settings(broker_url=broker, redis_url=REDIS))
    assert config["broker_connection_retry"] is True
    assert config["broker_connection_max_retries"] is None
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is False
