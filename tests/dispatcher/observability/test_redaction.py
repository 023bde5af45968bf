"""Redaction: known secret values and secret-named fields are masked in text, data and logs."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from dispatcher.observability.redaction import (
    MASK,
    RECENT_SECRETS,
    RedactingFilter,
    Redactor,
    default_redactor,
    install_log_redaction,
    is_secret_field,
)

API_KEY = "SG.live-4f9a1c2e7b"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/XYZsecretpath"
PASSWORD = "correct horse battery"
QUOTED = 'quote"d-secret'


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([API_KEY, WEBHOOK, SecretStr(PASSWORD), QUOTED])


def _remove_redacting_filters() -> None:
    for handler in logging.getLogger().handlers:
        for existing in list(handler.filters):
            if isinstance(existing, RedactingFilter):
                handler.removeFilter(existing)


@pytest.fixture
def no_redaction_left_behind() -> Iterator[None]:
    """No redacting filter before the test (pytest reuses its capture handler across tests, so
    a filter another test installed would stand in for this test's) and none after it."""
    _remove_redacting_filters()
    yield
    _remove_redacting_filters()


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apiKey",
        "X-Api-Key",
        "auth_token",
        "password",
        "private_key",
        "secret",
        "token",
        "signing_secret",
        "access_token",
        "refresh_token",
        "webhook_url",
        "webhookUrl",
        "Authorization",
        "client_secret",
        "credentials",
        "db_password",
        "cookie",
    ],
)
def test_secret_field_names(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize(
    "name",
    ["key_id", "keyId", "idempotency_key", "Idempotency-Key", "public_key", "name", "email", "url"],
)
def test_ordinary_field_names(name: str) -> None:
    assert not is_secret_field(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"sending with {API_KEY} now", f"sending with {MASK} now"),
        (f"{API_KEY}{API_KEY}", f"{MASK}{MASK}"),
        (f"POST {WEBHOOK} failed", f"POST {MASK} failed"),
        (f"password was {PASSWORD}!", f"password was {MASK}!"),
        # the same values as URLs and JSON documents spell them
        ("p=correct%20horse%20battery", f"p={MASK}"),
        ("p=correct+horse+battery", f"p={MASK}"),
        ('{"note": "quote\\"d-secret"}', f'{{"note": "{MASK}"}}'),
        # secret-named fields in text
        ("GET /send?api_key=abc123&to=ada", f"GET /send?api_key={MASK}&to=ada"),
        ("token=zzz; user=ada", f"token={MASK}; user=ada"),
        ('{"password": "hunter22", "name": "Ada"}', f'{{"password": "{MASK}", "name": "Ada"}}'),
        ("{'client_secret': 'shh-1', 'id': 7}", f"{{'client_secret': '{MASK}', 'id': 7}}"),
        ('{"token": "a\\"b", "n": "x"}', f'{{"token": "{MASK}", "n": "x"}}'),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-123", f"Authorization: Bearer {MASK}"),
        ("authorization: basic dXNlcjpwYXNzd29yZA==", f"authorization: basic {MASK}"),
        # what is not secret stays as it was
        ("key_id=kid-1 idempotency_key=abc-2", "key_id=kid-1 idempotency_key=abc-2"),
        ("Basic authentication is enabled", "Basic authentication is enabled"),
        ("delivered to ada@example.com in 120 ms", "delivered to ada@example.com in 120 ms"),
        ('{"name": "Ada", "count": 3}', '{"name": "Ada", "count": 3}'),
    ],
)
def test_redact_text(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.redact_text(text) == expected


def test_short_values_are_not_registered() -> None:
    redactor = Redactor(["abc", "12345"])
    assert redactor.redact_text("abc 12345 abcdef") == "abc 12345 abcdef"


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    redactor = Redactor(["secret", "secret-and-more"])
    assert redactor.redact_text("x secret-and-more y") == f"x {MASK} y"


def test_add_from_learns_every_string_of_a_credentials_object() -> None:
    redactor = Redactor()
    redactor.add_from({"account_sid": "AC1234567890", "auth": {"token": SecretStr("tok-98765")}})
    assert redactor.redact_text("AC1234567890 / tok-98765") == f"{MASK} / {MASK}"
    redactor.clear()
    assert redactor.redact_text("AC1234567890") == "AC1234567890"


def test_redact_data_masks_nested_fields_and_known_values(redactor: Redactor) -> None:
    data: dict[str, Any] = {
        "integration": {
            "provider": "sendgrid",
            "credentials": {"api_key": API_KEY},
            "settings": {"from_email": "no-reply@example.com", "key_id": "kid-1"},
        },
        "headers": [{"Authorization": "Bearer x"}, {"Content-Type": "application/json"}],
        "note": f"retrying {WEBHOOK}",
        "steps": ({"webhook_url": "https://example.com/hook?sig=1"}, "plain"),
        "idempotency_key": "msg-42",
        "password": None,
        "count": 3,
    }
    original = repr(data)
    redacted = redactor.redact_data(data)
    assert redacted == {
        "integration": {
            "provider": "sendgrid",
            "credentials": MASK,
            "settings": {"from_email": "no-reply@example.com", "key_id": "kid-1"},
        },
        "headers": [{"Authorization": MASK}, {"Content-Type": "application/json"}],
        "note": f"retrying {MASK}",
        "steps": ({"webhook_url": MASK}, "plain"),
        "idempotency_key": "msg-42",
        "password": None,
        "count": 3,
    }
    assert repr(data) == original  # the input is not changed


def test_redact_data_survives_a_container_holding_itself(redactor: Redactor) -> None:
    looped: list[Any] = [API_KEY]
    looped.append(looped)
    assert redactor.redact_data(looped) == [MASK, MASK]


def test_the_repr_shows_no_value(redactor: Redactor) -> None:
    assert API_KEY not in repr(redactor)
    assert PASSWORD not in repr(redactor)


def test_log_records_are_redacted(
    redactor: Redactor, caplog: pytest.LogCaptureFixture, no_redaction_left_behind: None
) -> None:
    install_log_redaction(redactor=redactor)
    assert any(isinstance(existing, RedactingFilter) for existing in caplog.handler.filters), (
        "the capture handler of the root logger got no filter"
    )
    logger = logging.getLogger("dispatcher.tests.redaction")
    with caplog.at_level(logging.INFO):
        logger.info("sending to %s with key %s", "ada@example.com", API_KEY)
        logger.info("payload %s", {"api_key": "not-known-but-named", "name": "Ada"})
        logger.warning("calling %(hook)s", {"hook": WEBHOOK})
        try:
            raise RuntimeError(f"provider refused key {API_KEY}")
        except RuntimeError:
            logger.exception("send failed for %s", "ada@example.com")
        logger.info("stack here", stack_info=True)

    messages = [record.getMessage() for record in caplog.records]
    assert messages[:4] == [
        f"sending to ada@example.com with key {MASK}",
        f"payload {{'api_key': '{MASK}', 'name': 'Ada'}}",
        f"calling {MASK}",
        "send failed for ada@example.com",
    ]
    assert API_KEY not in caplog.text
    assert WEBHOOK not in caplog.text
    assert "not-known-but-named" not in caplog.text
    assert f"RuntimeError: provider refused key {MASK}" in caplog.text
    assert caplog.records[3].exc_info is None  # only the redacted exc_text is left
    assert "ada@example.com" in caplog.text
    assert "test_log_records_are_redacted" in caplog.text  # the stack is kept


def test_a_badly_formatted_record_still_logs_redacted(
    redactor: Redactor, caplog: pytest.LogCaptureFixture
) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", (API_KEY,), None)
    assert RedactingFilter(redactor).filter(record)
    assert record.msg == "%s %s"
    assert record.args == (MASK,)


def test_install_is_idempotent_and_defaults_to_the_process_redactor(
    no_redaction_left_behind: None,
) -> None:
    logger = logging.getLogger("dispatcher.tests.redaction.own")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        first = install_log_redaction(logger)
        install_log_redaction(logger)
        assert handler.filters == [first]
        assert first.redactor is default_redactor
    finally:
        logger.removeHandler(handler)


def test_a_redacted_record_is_not_redacted_twice_into_garbage(redactor: Redactor) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "100%% done with %s", ("ok",), None)
    redacting = RedactingFilter(redactor)
    redacting.filter(record)
    redacting.filter(record)
    assert record.getMessage() == "100% done with ok"


def test_a_formatter_preferring_exc_info_gets_the_redacted_traceback(redactor: Redactor) -> None:
    class ExcInfoFirst(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            if record.exc_info:
                return self.formatException(record.exc_info)
            return record.exc_text or ""

    try:
        raise RuntimeError(f"refused {API_KEY}")
    except RuntimeError:
        logger = logging.getLogger("dispatcher.tests.redaction.excinfo")
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "x", (), sys.exc_info())
    RedactingFilter(redactor).filter(record)
    rendered = ExcInfoFirst().format(record)
    assert f"RuntimeError: refused {MASK}" in rendered
    assert API_KEY not in rendered


def test_values_registered_in_a_scope_are_masked_in_its_tasks_and_then_forgotten() -> None:
    redactor = Redactor()

    async def send(secret: str) -> str:
        redactor.add(secret)
        await asyncio.sleep(0)
        return redactor.redact_text(f"refused {secret}")

    async def batch() -> list[str]:
        with redactor.scope():
            return list(await asyncio.gather(send("tenant-a-secret"), send("tenant-b-secret")))

    assert asyncio.run(batch()) == [f"refused {MASK}", f"refused {MASK}"]
    # Kept among the recent few after the scope, so a late line about the batch is masked.
    assert redactor.redact_text("tenant-a-secret") == MASK
    for n in range(RECENT_SECRETS):
        with redactor.scope():
            redactor.add(f"later-secret-{n:05d}")
    assert redactor.redact_text("tenant-a-secret") == "tenant-a-secret"


def test_every_spelling_of_a_scoped_value_is_masked() -> None:
    redactor = Redactor()
    with redactor.scope():
        redactor.add(PASSWORD, QUOTED)
        assert redactor.redact_text("p=correct%20horse%20battery") == f"p={MASK}"
        assert redactor.redact_text("p=correct+horse+battery") == f"p={MASK}"
        assert redactor.redact_text('{"n": "quote\\"d-secret"}') == f'{{"n": "{MASK}"}}'
        assert redactor.redact_text("x correct horse battery y") == f"x {MASK} y"


def test_a_long_lived_worker_retains_a_bounded_set_of_secrets() -> None:
    """10,000 tenants' secrets over successive batches: what is retained, the memory held and
    the cost of a record stay where they were after the first few."""
    redactor = Redactor()
    record = "provider answered 401 for delivery 7f3a: invalid credentials " * 3

    def batches(count: int, start: int) -> None:
        for n in range(start, start + count):
            with redactor.scope():
                redactor.add(f"tenant-{n:05d}-api-key", SecretStr(f"tenant-{n:05d}-token/x"))
                redactor.redact_text(record)

    def per_record() -> float:
        started = time.perf_counter()
        for _ in range(200):
            redactor.redact_text(record)
        return (time.perf_counter() - started) / 200

    batches(10, 0)
    after_ten, cost_at_ten = redactor.retained(), per_record()
    tracemalloc.start()
    try:
        batches(1_000, 10)
        held_at_thousand = tracemalloc.get_traced_memory()[0]
        batches(9_000, 1_010)
        held_at_ten_thousand = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    cost_at_ten_thousand = per_record()
    print(
        f"per record: {cost_at_ten * 1e6:.1f} us at 10 secrets, "
        f"{cost_at_ten_thousand * 1e6:.1f} us at 10,000; "
        f"retained spellings {after_ten} -> {redactor.retained()}; "
        f"memory growth 1,000 -> 10,000 batches: {held_at_ten_thousand - held_at_thousand} B"
    )
    # Two values of up to four spellings each per batch, the last RECENT_SECRETS values kept.
    assert redactor.retained() <= RECENT_SECRETS * 4
    assert held_at_ten_thousand - held_at_thousand < 64 * 1024
