"""A provider's Retry-After, end to end in one batch: the integration is held (up to
``retry_after_cap``) and the delivery falls back to the next integration at once, or waits for
the hold's end when none is left; beyond the cap the integration shows ``error`` until the probe
finds it answering after the hold. Every form of the header ends bounded, none fails the batch."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from dispatcher import trigger
from dispatcher.config import Settings
from dispatcher.notifications.status import transaction_status
from dispatcher.sending.batch import circuit_store, process_batch
from dispatcher.sending.probe import probe
from models import Delivery, Integration, IntegrationStatus
from tests.dispatcher.support import fetch
from tests.security.support import (
    Route,
    ScriptedServer,
    act,
    email_step,
    open_deliveries,
    parked,
    sending_settings,
)

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")

THIRTY_DAYS = 30 * 24 * 3600
CAP = 45.0
#: The spread a hold's end gets (the base delay of ``sending_settings``: none).
SPREAD = 0.0


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


def integration(organisation_id: uuid.UUID, name: str, url: str, position: int) -> uuid.UUID:
    return act(organisation_id, "create_integration", {
        "name": name, "provider": "fake_http", "credentials": {"api_key": f"key-{name}"},
        "settings": {"url": url}, "priority": position, "is_primary": position == 0,
    })  # fmt: skip


def one_email(organisation_id: uuid.UUID) -> list[str]:
    act(organisation_id, "create_subscriber", {"external_id": "ada", "email": "ada@example.com"})
    act(
        organisation_id, "create_workflow", {"key": "w", "name": "w", "steps": parked(email_step())}
    )
    trigger(organisation_id, "w", "ada", {}, transaction_id="tx-retry-after")
    return open_deliveries(organisation_id)


def held_for(integration_id: uuid.UUID) -> float | None:
    return circuit_store().held_many([str(integration_id)]).get(str(integration_id))


def test_a_pause_beyond_the_cap_falls_back_to_the_next_integration_at_once(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": str(THIRTY_DAYS)}))
    paused_id = integration(organisation_id, "paused", paused, 0)
    integration(organisation_id, "spare", server.route("/spare", Route(200, '{"id": "m-9"}')), 1)
    report = process_batch(one_email(organisation_id), sending_settings(retry_after_cap=CAP))
    assert (report.sent, report.retrying) == (1, [])
    [view] = transaction_status(organisation_id, "tx-retry-after")
    assert (view.status, view.integration, view.attempts) == ("sent", "spare", 2)
    # Held for the cap, not the provider's 30 days, and marked: the probe takes it from here.
    held = held_for(paused_id)
    assert held is not None and CAP - 1 < held <= CAP
    assert fetch(Integration, paused_id).status is IntegrationStatus.ERROR


def test_a_pause_beyond_the_cap_with_no_other_integration_waits_the_cap(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": str(THIRTY_DAYS)}))
    integration(organisation_id, "paused", paused, 0)
    [delivery_id] = one_email(organisation_id)
    report = process_batch([delivery_id], sending_settings(retry_after_cap=CAP))
    [(retried, delay, critical)] = report.retrying
    assert (retried, critical) == (uuid.UUID(delivery_id), False)
    assert CAP - 1 < delay <= CAP + SPREAD
    [view] = transaction_status(organisation_id, "tx-retry-after")
    assert view.status == "retrying" and view.last_error is not None
    assert "429" in view.last_error


def test_a_pause_within_the_cap_holds_the_integration_and_falls_back(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": "30"}))
    paused_id = integration(organisation_id, "paused", paused, 0)
    integration(organisation_id, "spare", server.route("/spare", Route(200, '{"id": "m-9"}')), 1)
    [delivery_id] = one_email(organisation_id)
    report = process_batch([delivery_id], sending_settings(retry_after_cap=CAP))
    assert (report.sent, report.retrying) == (1, [])
    [view] = transaction_status(organisation_id, "tx-retry-after")
    assert (view.status, view.integration) == ("sent", "spare")
    held = held_for(paused_id)
    assert held is not None and 29 < held <= 30
    # A pause within the cap is not a fault: the status stays active.
    assert fetch(Integration, paused_id).status is IntegrationStatus.ACTIVE


def test_beyond_the_cap_the_probe_closes_the_integration_once_the_hold_has_ended(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": str(THIRTY_DAYS)}))
    paused_id = integration(organisation_id, "paused", paused, 0)
    process_batch(one_email(organisation_id), sending_settings(retry_after_cap=0.5))
    assert fetch(Integration, paused_id).status is IntegrationStatus.ERROR
    checks = [seen for seen in server.seen if seen.method == "GET"]
    while (left := held_for(paused_id)) is not None:
        # Still held: the probe does not call it.
        report = probe()
        assert str(paused_id) not in report.closed
        assert [seen for seen in server.seen if seen.method == "GET"] == checks
        time.sleep(min(left, 0.1))
    server.route("/paused", Route(200, '{"id": "m-1"}'))
    report = probe()
    assert str(paused_id) in report.closed
    assert fetch(Integration, paused_id).status is IntegrationStatus.ACTIVE


def test_a_cap_that_could_overflow_a_date_is_refused_naming_the_setting() -> None:
    for value in ("inf", "nan", "1e12", "-1"):
        with pytest.raises(ValidationError, match="retry_after_cap"):
            Settings(retry_after_cap=value)


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imf_fixdate(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def rfc850_date(when: datetime) -> str:
    day, month = DAYS[when.weekday()], MONTHS[when.month - 1]
    return f"{day}, {when.day:02d}-{month}-{when.year % 100:02d} {when:%H:%M:%S} GMT"


def asctime_date(when: datetime) -> str:
    day, month = DAYS[when.weekday()][:3], MONTHS[when.month - 1]
    return f"{day} {month} {when.day:2d} {when:%H:%M:%S} {when.year}"


def in_40_seconds(form: Callable[[datetime], str]) -> Callable[[], str]:
    return lambda: form(datetime.now(UTC) + timedelta(seconds=40))


#: Each form a provider may send, and the hold it makes (seconds; None: none, plain backoff).
FORMS: dict[str, tuple[str | Callable[[], str], float | None]] = {
    "delta": ("30", 30.0),
    "zero": ("0", None),
    "negative": ("-5", None),
    "huge digits": ("9" * 5000, CAP),
    "beyond 2**31": ("99999999999999999999", CAP),
    "float": ("1.5", None),
    "exponent": ("1e400", None),
    "inf": ("inf", None),
    "nan": ("nan", None),
    "IMF-fixdate future": (in_40_seconds(imf_fixdate), 40.0),
    "IMF-fixdate past": ("Sun, 06 Nov 1994 08:49:37 GMT", None),
    "RFC 850 future": (in_40_seconds(rfc850_date), 40.0),
    "RFC 850 past": ("Sunday, 06-Nov-94 08:49:37 GMT", None),
    "asctime future": (in_40_seconds(asctime_date), 40.0),
    "asctime past": ("Sun Nov  6 08:49:37 1994", None),
    "far future date": ("Fri, 31 Dec 9999 23:59:59 GMT", CAP),
    "garbage": ("soon, probably", None),
    "empty": ("", None),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_retry_after_ends_bounded(
    server: ScriptedServer, organisation_id: uuid.UUID, form: str
) -> None:
    value, hold = FORMS[form]
    header = value if isinstance(value, str) else value()
    paused = server.route("/paused", Route(429, "{}", {"Retry-After": header}))
    paused_id = integration(organisation_id, "paused", paused, 0)
    [delivery_id] = one_email(organisation_id)
    report = process_batch([delivery_id], sending_settings(retry_after_cap=CAP))
    [(_, delay, _)] = report.retrying
    row = fetch(Delivery, uuid.UUID(delivery_id))
    assert row.next_attempt_at is not None
    held = held_for(paused_id)
    if hold is None:
        # No wait of the provider's: plain backoff (none under these settings), nothing held.
        assert held is None and delay == 0.0
    else:
        # Held (a second may pass between the answer and this read), and the delivery waits
        # for the hold's end.
        assert held is not None and hold - 2 < held <= hold
        assert hold - 2 < delay <= hold + SPREAD
    status = fetch(Integration, paused_id).status
    assert status is (IntegrationStatus.ERROR if hold == CAP else IntegrationStatus.ACTIVE)
