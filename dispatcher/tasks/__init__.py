"""Thin Celery task modules; importing this package registers them on
:data:`dispatcher.celery_app.app`: ``actions`` (one task per action), ``deliveries`` (send a
batch, pump the outbox, sweep), ``lifecycle`` (apply provider callbacks' events) and
``maintenance`` (the other beat jobs)."""

from dispatcher.tasks import deliveries, lifecycle, maintenance
from dispatcher.tasks.actions import action_task, action_task_name

__all__ = ["action_task", "action_task_name", "deliveries", "lifecycle", "maintenance"]
