"""Structured logs: the JSON and text formatters, the identifier context, configure_logging."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.config import reset_settings
from dispatcher.observability.logging import (
    JsonFormatter,
    TextFormatter,
    bind_task_context,
    configure_logging,
    current_context,
    log_context,
    unbind_task_context,
)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (configure_logging changes it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def record(message: str = "hello %s", *args: object, **attributes: Any) -> logging.LogRecord:
    made = logging.LogRecord("dispatcher.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(attributes)
    return made


def as_json(line: str) -> dict[str, Any]:
    assert "\n" not in line
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_a_json_line_has_utc_time_level_logger_and_the_formatted_message() -> None:
    entry = as_json(JsonFormatter().format(record("hello %s", "world")))

    assert set(entry) == {"time", "level", "logger", "message"}
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "dispatcher.test"
    assert entry["message"] == "hello world"
    assert entry["time"].endswith("Z")
    logged_at = datetime.fromisoformat(entry["time"])
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(seconds=5)


def test_an_exception_and_a_multi_line_message_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        made = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "first\nsecond", (), exc_info=sys.exc_info()
        )
    entry = as_json(JsonFormatter().format(made))

    assert entry["message"] == "first\nsecond"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: boom")


def test_an_already_rendered_traceback_is_used_as_it_is() -> None:
    # What a redacting filter leaves: exc_info dropped, exc_text masked.
    entry = as_json(JsonFormatter().format(record(exc_text="Traceback ...\nKeyError: ***")))

    assert entry["exception"] == "Traceback ...\nKeyError: ***"


def test_identifiers_come_from_the_context_and_the_block_restores_it() -> None:
    formatter = JsonFormatter()
    with log_context(organisation_id="org-1", transaction_id="tx-1"):
        with log_context(delivery_id=42, transaction_id="tx-2"):
            inner = as_json(formatter.format(record()))
        outer = as_json(formatter.format(record()))
    after = as_json(formatter.format(record()))

    assert inner["organisation_id"] == "org-1"
    assert inner["transaction_id"] == "tx-2"
    assert inner["delivery_id"] == "42"
    assert (outer["transaction_id"], "delivery_id" in outer) == ("tx-1", False)
    assert not {"organisation_id", "transaction_id", "delivery_id"} & set(after)


def test_the_context_is_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), log_context(delivery_id="d-1"):
        raise RuntimeError
    assert "delivery_id" not in current_context()


def test_a_value_on_the_record_wins_and_other_attributes_are_not_logged() -> None:
    with log_context(organisation_id="from-context", task_id="t-1"):
        entry = as_json(
            JsonFormatter().format(record(organisation_id="from-record", password="hunter2"))
        )

    assert entry["organisation_id"] == "from-record"
    assert entry["task_id"] == "t-1"
    assert "hunter2" not in json.dumps(entry)


def test_an_unknown_context_field_is_refused() -> None:
    with pytest.raises(TypeError, match="secret"), log_context(secret="x"):
        pass
    assert dict(current_context()) == {}


def test_none_removes_an_identifier_inside_the_block() -> None:
    with log_context(delivery_id="d-1"):
        with log_context(delivery_id=None):
            assert "delivery_id" not in current_context()
        assert current_context()["delivery_id"] == "d-1"


def test_concurrent_coroutines_keep_their_own_identifiers() -> None:
    formatter = JsonFormatter()

    async def send(delivery_id: str) -> list[str]:
        seen = []
        with log_context(delivery_id=delivery_id):
            for _ in range(3):
                await asyncio.sleep(0)
                seen.append(as_json(formatter.format(record()))["delivery_id"])
        return seen

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(send("a"), send("b")))

    assert asyncio.run(both()) == [["a"] * 3, ["b"] * 3]


def test_a_task_binding_nests_and_unbinds_by_task_id() -> None:
    with log_context(organisation_id="org-1"):
        bind_task_context("outer", "action.create_user")
        bind_task_context("inner", "action.create_agent")
        assert current_context()["task_id"] == "inner"
        assert current_context()["task_name"] == "action.create_agent"
        unbind_task_context("inner")
        assert current_context()["task_id"] == "outer"
        unbind_task_context("outer")
        unbind_task_context("never-bound")
        assert dict(current_context()) == {"organisation_id": "org-1"}


def test_the_text_line_names_the_identifiers_after_the_message() -> None:
    with log_context(task_id="t-1", delivery_id="d-1"):
        line = TextFormatter().format(record("sent"))

    assert line.startswith("[")
    assert "WARNING" in line
    assert line.endswith("dispatcher.test: sent [delivery_id=d-1 task_id=t-1]")


def test_configure_logging_writes_json_at_the_level_and_replaces_itself(
    root_logger: logging.Logger,
) -> None:
    foreign = logging.NullHandler()
    root_logger.addHandler(foreign)
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, level="info", stream=first)
    configure_logging(json=True, level="info", stream=second)

    logger = logging.getLogger("dispatcher.ops.test")
    logger.debug("hidden")
    with log_context(organisation_id="org-1"):
        logger.info("shown %d", 1)

    assert first.getvalue() == ""
    lines = second.getvalue().splitlines()
    assert len(lines) == 1
    entry = as_json(lines[0])
    assert (entry["message"], entry["level"], entry["organisation_id"]) == (
        "shown 1",
        "INFO",
        "org-1",
    )
    assert foreign in root_logger.handlers


def test_reconfiguring_keeps_the_filters_of_the_replaced_handler(
    root_logger: logging.Logger,
) -> None:
    class Mask(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = str(record.msg).replace("hunter2", "***")
            return True

    configure_logging(json=True, level="INFO", stream=io.StringIO())
    for handler in root_logger.handlers:
        handler.addFilter(Mask())
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    logging.getLogger("dispatcher.ops.test").info("password hunter2")

    assert as_json(stream.getvalue().strip())["message"] == "password ***"


def test_configure_logging_in_text_mode(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(json=False, level=logging.WARNING, stream=stream)
    logging.getLogger("dispatcher.ops.test").info("hidden")
    logging.getLogger("dispatcher.ops.test").warning("careful")

    (line,) = stream.getvalue().splitlines()
    assert line.endswith("dispatcher.ops.test: careful")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_an_unknown_level_is_refused(root_logger: logging.Logger) -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging(json=True, level="LOUD")


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    reset_settings()
    yield monkeypatch
    reset_settings()


def test_a_celery_task_logs_with_its_id_and_name(root_logger: logging.Logger) -> None:
    from dispatcher.celery_app import app

    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    probe_logger = logging.getLogger("tests.ops.probe")

    @app.task(name="tests.ops.log_probe", shared=False)
    def probe() -> None:
        probe_logger.info("inside")

    result = probe.apply()
    probe_logger.info("after")

    entries = [as_json(line) for line in stream.getvalue().splitlines()]
    inside, after = (entry for entry in entries if entry["logger"] == "tests.ops.probe")
    assert (inside["task_id"], inside["task_name"]) == (result.id, "tests.ops.log_probe")
    assert "task_id" not in after


def test_celery_logging_setup_follows_the_settings(
    root_logger: logging.Logger, fresh_settings: pytest.MonkeyPatch
) -> None:
    from celery.signals import setup_logging

    import dispatcher.celery_app  # noqa: F401 - connects the receivers

    def setup(loglevel: int) -> list[logging.Handler]:
        reset_settings()
        setup_logging.send(sender=None, loglevel=loglevel, logfile=None, format="", colorize=False)
        return [h for h in root_logger.handlers if isinstance(h.formatter, JsonFormatter)]

    fresh_settings.setenv("DISPATCHER_LOG_JSON", "true")
    fresh_settings.delenv("DISPATCHER_LOG_LEVEL", raising=False)
    assert len(setup(logging.WARNING)) == 1
    assert root_logger.level == logging.WARNING  # --loglevel, as Celery users expect

    fresh_settings.setenv("DISPATCHER_LOG_LEVEL", "debug")
    assert len(setup(logging.WARNING)) == 1  # replaced, not added
    assert root_logger.level == logging.DEBUG  # an explicit setting wins
