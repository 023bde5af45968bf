"""Every task of the app refuses a message Celery cannot unpack, with a logged reason.

Celery's own request lets a ``KeyError``/``TypeError``/``ValueError`` from a malformed body or
header escape from the consumer, which stops the worker; the message, put back in the queue at
shutdown, then stops every worker that takes it again. ``InvalidTaskError`` is what Celery itself
raises for messages it cannot use: the consumer logs it and acknowledges the message.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import InvalidTaskError
from celery.worker.request import Request


class CheckedRequest(Request):
    """Celery's request, with unpacking errors turned into a refused message."""

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(message, *args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidTaskError(f"malformed message ({type(exc).__name__}: {exc})") from None


class CheckedTask(Task):  # type: ignore[type-arg]
    """The app's task class: ours and Celery's built-in tasks all use :class:`CheckedRequest`."""

    Request = "dispatcher.checked_request:CheckedRequest"
