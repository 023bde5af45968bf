"""The Celery application: queues, reliability options and events, all from the settings.

``celery -A dispatcher worker|beat|flower`` finds :data:`app` on the package.
"""

from __future__ import annotations

import gc
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)
from celery.utils.dispatch import Signal
from kombu import Exchange, Queue

from dispatcher.config import REDIS_SCHEMES, Settings, get_settings
from dispatcher.observability.logging import (
    bind_task_context,
    configure_logging,
    unbind_task_context,
)
from dispatcher.observability.metrics import (
    prepare_worker_metrics,
    record_batch,
    serve_worker_metrics,
)
from dispatcher.observability.redaction import install_log_redaction
from dispatcher.runtime.embedded_broker import kombu_url
from dispatcher.runtime.resources import ensure_ready, reset
from dispatcher.runtime.startup import refuse_to_start_unless_ready

ACTION_TASK_PREFIX = "action."
#: Applies provider callbacks' events (``dispatcher.tasks.lifecycle``), on its own queue: a burst
#: of callbacks never waits behind sends, nor sends behind it.
APPLY_EVENTS_TASK = "dispatcher.apply_delivery_events"

#: Sent by the delivery task with the finished batch's report (``report=``): metrics, and any
#: other cross-cutting work, read it here instead of inside the batch.
batch_finished = Signal(name="dispatcher.batch_finished")


def celery_config(settings: Settings) -> dict[str, Any]:
    settings.ensure_data_dir()
    config: dict[str, Any] = {
        "broker_url": kombu_url(settings.resolved_broker_url),
        "result_backend": settings.resolved_result_backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_extended": True,
        "result_expires": 24 * 3600,
        "task_queues": task_queues(settings),
        "task_default_queue": settings.action_queue,
        "task_default_exchange": settings.action_queue,
        "task_default_routing_key": settings.action_queue,
        "task_routes": {
            f"{ACTION_TASK_PREFIX}*": {"queue": settings.action_queue},
            # Exact names are matched before the patterns.
            APPLY_EVENTS_TASK: {"queue": settings.lifecycle_queue},
            "dispatcher.*": {"queue": settings.delivery_queue},
        },
        "beat_schedule": {
            "sweep-outbox": {
                "task": "dispatcher.sweep_outbox",
                "schedule": settings.sweep_interval,
            },
            "fire-schedules": {
                "task": "dispatcher.fire_schedules",
                "schedule": settings.schedule_interval,
                "options": {"expires": settings.schedule_interval},
            },
            "purge-retention": {
                "task": "dispatcher.purge_retention",
                "schedule": settings.retention_interval,
                "options": {"expires": settings.retention_interval},
            },
            "probe-circuits": {
                "task": "dispatcher.probe_circuits",
                "schedule": settings.probe_interval,
                "options": {"expires": settings.probe_interval},
            },
        },
        # A task is acknowledged after it ran, and a task whose worker died is redelivered:
        # handlers are idempotent (the action ledger, terminal delivery states).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Flower and `celery events` see every task.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "broker_connection_retry_on_startup": True,
        # A broker outage of any length is waited out (the default gives up after 100 tries,
        # and the worker exits); the outbox keeps what producers trigger meanwhile.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        # A batch running when the broker connection drops finishes its sends: its deliveries
        # end terminal, so a redelivered message skips them. Cancelling it would leave its sends
        # in flight to be repeated after the send lease (50 duplicates per killed batch, measured).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
        # Celery's consumer, except that a broken connection failing to close does not stop the
        # worker (see the module).
        "worker_consumer": "dispatcher.runtime.worker_consumer:ReconnectingConsumer",
    }
    if settings.uses_embedded_broker:
        config["broker_transport_options"] = {
            "polling_interval": settings.embedded_polling_interval
        }
    if settings.resolved_broker_url.startswith(REDIS_SCHEMES):
        config["broker_transport_options"] = {
            # A message not acknowledged within an hour goes back to the queue (acks_late).
            "visibility_timeout": 3600,
            # A connection the broker dropped (restart, failover) is found and replaced before
            # it is used, not when a command on it fails.
            "health_check_interval": 10,
            "retry_on_timeout": True,
        }
    if settings.uses_amqp_broker:
        # Quorum queues need publisher confirms; Celery then uses per-consumer prefetch.
        config["broker_transport_options"] = {"confirm_publish": True}
        config["worker_detect_quorum_queues"] = True
    return config


def task_queues(settings: Settings) -> tuple[Queue, ...]:
    """Each queue on its own exchange, bound by its own name as routing key: a Queue given only
    a name would be bound with the default routing key, and every message would land in all.

    On RabbitMQ the queues are quorum queues (replicated, durable; acks_late redelivery) on topic
    exchanges, which Celery's native delayed delivery needs for countdowns: a direct exchange
    would make a worker hold each countdown task in memory until it is due.
    """
    names = (
        settings.action_queue,
        settings.delivery_queue,
        settings.critical_queue,
        settings.lifecycle_queue,
    )
    if settings.uses_amqp_broker:
        return tuple(
            Queue(
                name,
                Exchange(name, type="topic"),
                routing_key=name,
                queue_arguments={"x-queue-type": "quorum"},
            )
            for name in names
        )
    return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names)


def create_app(settings: Settings | None = None) -> Celery:
    celery_app = Celery("dispatcher", task_cls="dispatcher.checked_request:CheckedTask")
    celery_app.conf.update(celery_config(settings or get_settings()))
    return celery_app


app = create_app()


@worker_init.connect
def _check_configuration_at_start(**_: Any) -> None:
    refuse_to_start_unless_ready("the worker")
    prepare_worker_metrics()


@beat_init.connect
def _check_beat_configuration_at_start(**_: Any) -> None:
    refuse_to_start_unless_ready("beat")


@worker_ready.connect
def _serve_worker_metrics(**_: Any) -> None:
    serve_worker_metrics()


@worker_process_init.connect
def _fresh_resources_in_child(**_: Any) -> None:
    # A forked pool process must not share the parent's database connections.
    reset()
    ensure_ready()
    tune_garbage_collector(get_settings())


def tune_garbage_collector(settings: Settings) -> None:
    """The inherited heap (modules, settings, the app) lives as long as the process: frozen, the
    collector stops walking it on every full collection."""
    if settings.gc_gen0_threshold:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.gc_gen0_threshold, older, oldest)
    if settings.gc_freeze_after_fork:
        gc.freeze()


@setup_logging.connect
def _configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # A receiver here means Celery installs no handlers of its own (worker, beat).
    settings = get_settings()
    explicit = "log_level" in settings.model_fields_set
    level = settings.log_level if explicit or not loglevel else loglevel
    configure_logging(json=settings.log_json, level=level)
    install_log_redaction()


@task_prerun.connect
def _bind_task_to_logs(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is not None:
        bind_task_context(task_id, getattr(task, "name", None))


@task_postrun.connect
def _unbind_task_from_logs(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        unbind_task_context(task_id)


@batch_finished.connect
def _record_batch_metrics(report: Any = None, **_: Any) -> None:
    if report is not None:
        record_batch(report.jobs, report.outcomes, claimed_at=report.claimed_at, due=report.due)
