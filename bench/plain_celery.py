"""Baseline: what a team writes first. One Celery task per notification, a sync HTTP call in it.

``celery -A bench.plain_celery worker --pool prefork --concurrency 2``
"""

from __future__ import annotations

import os

import httpx
from celery import Celery

app = Celery("plain", broker=os.environ.get("BENCH_PLAIN_BROKER", "redis://127.0.0.1:6379/11"))
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)

_client: httpx.Client | None = None


@app.task(name="plain.send")
def send(url: str, delivery_id: str) -> None:
    global _client  # noqa: PLW0603 - one keep-alive client per worker process
    if _client is None:
        _client = httpx.Client(timeout=10)
    response = _client.post(url, json={"delivery_id": delivery_id, "body": "hello"})
    response.raise_for_status()
