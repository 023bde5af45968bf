"""A process keeps its PostgreSQL connections up to the pool's limit instead of reopening them."""

from __future__ import annotations

import threading

from sqlalchemy import event, text

from dispatcher.runtime.db import POOL_CONNECTIONS, build_engine


def test_connections_of_a_burst_are_kept_and_reused(postgres_url: str) -> None:
    engine = build_engine(postgres_url)
    opened: list[int] = []

    event.listen(engine, "connect", lambda *_: opened.append(1))
    barrier = threading.Barrier(POOL_CONNECTIONS)

    def burst() -> None:
        with engine.connect() as connection:
            barrier.wait(timeout=30)
            connection.execute(text("SELECT 1"))

    try:
        for _ in range(2):
            threads = [threading.Thread(target=burst) for _ in range(POOL_CONNECTIONS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(opened) == POOL_CONNECTIONS
        assert engine.pool.checkedin() == POOL_CONNECTIONS  # type: ignore[attr-defined]
    finally:
        engine.dispose()
