"""Notification and action dispatcher on Celery.

``from dispatcher import enqueue_action, run_action`` in application code;
``celery -A dispatcher worker`` to run the workers.
"""

from dispatcher.celery_app import app
from dispatcher.errors import (
    ActionArgumentsError,
    ActionTimeoutError,
    ConfigurationError,
    DispatcherError,
    TriggerError,
    UnknownActionError,
)
from dispatcher.notifications.triggers import TriggerReceipt, trigger, trigger_async, trigger_bulk
from dispatcher.organisations import create_organisation
from dispatcher.producer import ActionHandle, enqueue_action, run_action
from dispatcher.results import Err, ErrorCode, Ok, Result

__all__ = [
    "ActionArgumentsError",
    "ActionHandle",
    "ActionTimeoutError",
    "ConfigurationError",
    "DispatcherError",
    "Err",
    "ErrorCode",
    "Ok",
    "Result",
    "TriggerError",
    "TriggerReceipt",
    "UnknownActionError",
    "app",
    "create_organisation",
    "enqueue_action",
    "run_action",
    "trigger",
    "trigger_async",
    "trigger_bulk",
]
