"""A worker whose database is unreachable retries with backoff, then answers an Err."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from dispatcher.celery_app import app
from dispatcher.dev.worker_process import running_worker
from dispatcher.results import Err, ErrorCode, from_wire
from dispatcher.tasks import action_task


@pytest.mark.worker
def test_lost_database_is_retried_then_answered_unavailable(redis_url: str, tmp_path: Path) -> None:
    queue = f"actions-db-down-{uuid.uuid4().hex[:6]}"
    hostname = f"db-down-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    environment = {
        **os.environ,
        # Nothing listens on port 1: every connection attempt fails at once.
        "DISPATCHER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
        "DISPATCHER_ACTION_QUEUE": queue,
        "DISPATCHER_ACTION_MAX_RETRIES": "2",
    }
    log_file = tmp_path / "worker.log"
    with running_worker(
        environment=environment, log_file=log_file, hostname=hostname, concurrency=1
    ):
        async_result = action_task("create_user").apply_async(
            kwargs={"organisation_id": str(uuid.uuid4()), "arguments": {"name": "Ada"}},
            queue=queue,
        )
        result = from_wire(async_result.get(timeout=60))
    assert isinstance(result, Err)
    assert result.code == ErrorCode.UNAVAILABLE
    assert "after 2 retries" in result.message
    log = log_file.read_text()
    assert log.count("database unavailable (OperationalError), retrying") == 2
    assert "nowhere" not in result.message
    assert app.conf.task_acks_late
