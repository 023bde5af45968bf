import httpx
import pytest

from providers.base import ChannelType, Message, Recipient
from providers.errors import MAX_DETAIL, IntegrationError, RecipientError, RetryableError
from providers.sms_common import (
    code_error,
    is_gsm,
    message_text,
    msisdn,
    one_line,
    recipient_number,
)

TABLE = {
    "1": (RetryableError, "throttled"),
    "2": (IntegrationError, "bad key"),
    "3": (RecipientError, "bad number"),
}


def message(phone: str | None = "+14155550100", body: str = "hi") -> Message:
    return Message(delivery_id="d-1", channel=ChannelType.SMS, to=Recipient(phone=phone), body=body)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+44 7700.900/000", "+447700900000"),
        ("+4915112345", "+4915112345"),
    ],
)
def test_recipient_number_normalises_separators(phone: str, expected: str) -> None:
    assert recipient_number("sms", message(phone)) == expected


@pytest.mark.parametrize(
    "phone",
    [
        None,
        "",
        "14155550100",
        "004414155550100",
        "+0441234567",
        "+123456",
        "+1234567890123456",
        "+1415555O100",
        "+14155550100<14155550111",
        "+14155550100,+14155550111",
    ],
)
def test_recipient_number_rejects_non_e164(phone: str | None) -> None:
    with pytest.raises(RecipientError) as caught:
        recipient_number("sms", message(phone))
    # The number itself is personal data; the error names the problem only.
    if phone:
        assert phone not in str(caught.value)


def test_msisdn_drops_the_plus() -> None:
    assert msisdn("+447700900000") == "447700900000"


def test_message_text_refuses_blank_text() -> None:
    assert message_text("sms", message(body=" hi ")) == " hi "
    with pytest.raises(RecipientError, match="no text"):
        message_text("sms", message(body=" \n "))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world! 123", True),
        ("Ça coûte 5€ [promo] {x} ~ ^ | \\", False),  # ç and û are not GSM-7
        ("Ça va? 5€ [promo] {x} ~ ^ | \\ ÄÖÑÜ äöñüà", True),
        ("Привет", False),
        ("ok 👍", False),
    ],
)
def test_is_gsm(text: str, expected: bool) -> None:
    assert is_gsm(text) is expected


def test_one_line_collapses_and_truncates() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    # Only a bound on memory: the dispatcher masks secrets before it cuts what it stores.
    assert one_line("x" * (MAX_DETAIL + 100)) == "x" * MAX_DETAIL
    assert one_line(None) == "None"


@pytest.mark.parametrize(("code", "expected"), [("2", IntegrationError), ("3", RecipientError)])
def test_code_error_builds_the_tabled_class(code: str, expected: type) -> None:
    error = code_error("sms", TABLE, code, "told\nso", httpx.Response(400))
    assert type(error) is expected
    assert error is not None
    assert error.provider_code == code
    assert error.status_code == 400
    assert str(error) == f"sms: {TABLE[code][1]} ({code}: told so)"


def test_code_error_retryable_honours_retry_after() -> None:
    error = code_error("sms", TABLE, "1", "", httpx.Response(200, headers={"Retry-After": "12"}))
    assert isinstance(error, RetryableError)
    assert error.retry_after == 12.0
    assert str(error) == "sms: throttled (1)"


def test_code_error_unknown_code_is_none() -> None:
    assert code_error("sms", TABLE, "404", "x", httpx.Response(400)) is None
