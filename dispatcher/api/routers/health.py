"""``/healthz``: the process answers. ``/readyz``: the database and the broker answer too.

``/readyz`` also reports how many integrations have stored credentials that this process's
key ring cannot decrypt (counted at most once a minute: every credential is tried); a non-zero
count does not make the API unready (it sends nothing), it tells the operator which keys are
missing before the workers' deliveries wait on them (``null`` where this process has no key ring,
as in the compose stack, where only the worker holds the keys).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.celery_app import app as celery_app
from dispatcher.errors import ConfigurationError
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.runtime.startup import check_stored_credentials

logger = logging.getLogger(__name__)

router = APIRouter(tags=["Health"])

#: Seconds the undecryptable count is reused for.
KEY_CHECK_INTERVAL = 60.0
BROKER_TIMEOUT = 2


class _KeyCheckCache:
    def __init__(self) -> None:
        self._at = -KEY_CHECK_INTERVAL
        self._value: int | None = None
        self._lock = threading.Lock()

    def undecryptable(self) -> int | None:
        with self._lock:
            if time.monotonic() - self._at >= KEY_CHECK_INTERVAL:
                ensure_ready()
                self._value = check_stored_credentials(database(), limit=None).undecryptable
                self._at = time.monotonic()
            return self._value


key_check = _KeyCheckCache()


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the broker answer")
def readyz() -> JSONResponse:
    checks: dict[str, Any] = {"database": _database(), "broker": _broker()}
    ready = checks["database"] == "ok" and checks["broker"] == "ok"
    if checks["database"] == "ok":
        try:
            checks["undecryptableIntegrations"] = key_check.undecryptable()
        except ConfigurationError:
            # Triggers need no credentials: without a key ring here the API still serves.
            checks["undecryptableIntegrations"] = None
            checks["keys"] = "not configured in this process"
        except SQLAlchemyError as exc:
            checks["undecryptableIntegrations"] = None
            checks["keys"] = type(exc).__name__
            ready = False
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


def _database() -> str:
    try:
        with database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, ConfigurationError) as exc:
        logger.warning("readyz: database unavailable (%s)", type(exc).__name__)
        return "unavailable"
    return "ok"


def _broker() -> str:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # kombu raises the transport's own errors
        logger.warning("readyz: broker unavailable (%s)", type(exc).__name__)
        return "unavailable"
    return "ok"
