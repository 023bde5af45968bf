"""Celery tasks; importing this package registers them on :data:`dispatcher.celery_app.app`."""

from dispatcher.tasks import deliveries, maintenance
from dispatcher.tasks.actions import action_task, action_task_name

__all__ = ["action_task", "action_task_name", "deliveries", "maintenance"]
