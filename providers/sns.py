"""Amazon SNS SMS: https://docs.aws.amazon.com/sns/latest/api/API_Publish.html

A text message is published straight to a phone number, no topic: ``POST
https://sns.{region}.amazonaws.com/`` with the Query API's form body ``Action=Publish``,
``Version=2010-03-31``, ``PhoneNumber`` (E.164), ``Message`` and ``MessageAttributes.entry.N``
(https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html):
``AWS.SNS.SMS.SMSType`` (``Transactional`` unless the integration says ``Promotional``: one-time
codes and alerts are, and carriers give them priority), ``AWS.SNS.SMS.SenderID`` and
``AWS.MM.SMS.OriginationNumber`` when set. Signed with AWS Signature Version 4 for service
``sns`` (:mod:`providers.aws_sigv4`, as :mod:`providers.ses` signs). A 200 answers
``<PublishResponse><PublishResult><MessageId>...`` (XML; the JSON form AWS SDKs may ask for is
read too); the ``MessageId`` is the message id. Publish takes no idempotency key.

Errors are ``<ErrorResponse><Error><Type/><Code/><Message/></Error>`` (Publish's documented
errors and https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html): ``InvalidParameter``
(or ``InvalidParameterValue``, ``ParameterValueInvalid``) about ``PhoneNumber`` is the
recipient's, about anything else (a sender id) the integration's; ``AuthorizationError``,
``InvalidClientTokenId``, ``SignatureDoesNotMatch``, ``InvalidSecurity``, ``ExpiredToken`` and
``OptInRequired`` are the integration's; ``Throttling``/``Throttled`` and ``InternalError`` are
retried. ``Action=GetSMSSandboxAccountStatus`` reads whether the account is in the SMS sandbox
without sending anything: the credentials check.

The answers are read with two bounded patterns, not an XML parser: only two elements are
needed, and the answer comes from wherever ``base_url`` points.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field, field_validator

from providers.aws_sigv4 import signed_headers_for
from providers.base import ChannelType, CheckResult, Message, RateLimitSettings
from providers.errors import MAX_DETAIL, IntegrationError, RecipientError, RetryableError
from providers.http import ErrorClass, error_detail, json_body
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest
from providers.ses import SesCredentials
from providers.sms_common import E164, message_text, one_line, recipient_number

SERVICE = "sns"
API_VERSION = "2010-03-31"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
#: "Up to 11 alphanumeric characters ... at least one letter and no spaces."
_SENDER_ID = re.compile(r"^[A-Za-z0-9]{0,10}[A-Za-z][A-Za-z0-9]{0,10}$")

_INVALID_PARAMETER = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "ParameterValueInvalid"}
)

#: Error codes that settle the outcome whatever the HTTP status.
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "AuthorizationError": IntegrationError,
        "InvalidClientTokenId": IntegrationError,
        "SignatureDoesNotMatch": IntegrationError,
        "IncompleteSignature": IntegrationError,
        "MissingAuthenticationToken": IntegrationError,
        "InvalidSecurity": IntegrationError,
        "ExpiredToken": IntegrationError,
        "AccessDenied": IntegrationError,
        "OptInRequired": IntegrationError,
        "Throttling": RetryableError,
        "Throttled": RetryableError,
        "ThrottlingException": RetryableError,
        "InternalError": RetryableError,
        "InternalFailure": RetryableError,
        "ServiceUnavailable": RetryableError,
    }
)


def _element(name: str, text: str) -> str | None:
    """The text of the first ``<name>`` element of an AWS Query answer, unescaped."""
    found = re.search(rf"<{name}>([^<]{{0,{MAX_DETAIL}}})</{name}>", text)
    return html.unescape(found.group(1)).strip() if found else None


class SnsCredentials(SesCredentials):
    """An IAM access key allowed ``sns:Publish`` (the same fields as SES's)."""


class SnsSettings(RateLimitSettings):
    """``rate_limit_per_second`` paces the account: SNS publishes 20 SMS a second by default."""

    region: str
    sms_type: Literal["Transactional", "Promotional"] = "Transactional"
    #: An alphanumeric sender id, where the destination country supports them.
    sender_id: str | None = Field(default=None, max_length=11, pattern=_SENDER_ID.pattern)
    #: A number of the account's (E.164) to send from, where a country wants one.
    origination_number: str | None = Field(default=None, pattern=E164.pattern)
    #: Overrides ``https://sns.{region}.amazonaws.com`` (a VPC endpoint, a test server).
    base_url: str | None = None

    @field_validator("region")
    @classmethod
    def _looks_like_region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("region must be an AWS region code such as us-east-1")
        return value


class SnsProvider(HttpProvider[SnsCredentials, SnsSettings]):
    name = "sns"
    display_name = "Amazon SNS SMS"
    channel = ChannelType.SMS
    credentials_model = SnsCredentials
    settings_model = SnsSettings
    returns_message_id = True
    #: "The maximum length of an SMS message is 1,600 bytes"; SNS splits it into parts itself.
    max_body_length = 1600
    rate_limit_per_second = 20.0
    error_codes = ERROR_CODES

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        #: The signing time; tests pin it.
        self.clock = clock or (lambda: datetime.now(UTC))

    @staticmethod
    def base_url(settings: SnsSettings) -> str:
        return (settings.base_url or f"https://sns.{settings.region}.amazonaws.com").rstrip("/")

    def build_request(
        self, message: Message, credentials: SnsCredentials, settings: SnsSettings
    ) -> HttpRequest:
        form = build_form(message, recipient_number(self.name, message), settings)
        return self._signed(form, credentials, settings)

    async def check(
        self,
        credentials: SnsCredentials,
        settings: SnsSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        request = self._signed(
            [("Action", "GetSMSSandboxAccountStatus"), ("Version", API_VERSION)],
            credentials,
            settings,
        )
        response = await self.exchange(client, request)
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        sandbox = _element("IsInSandbox", response.text) == "true"
        note = " (SMS sandbox: verified destination numbers only)" if sandbox else ""
        return CheckResult(ok=True, detail=f"credentials valid in {settings.region}{note}")

    def _signed(
        self, form: list[tuple[str, str]], credentials: SnsCredentials, settings: SnsSettings
    ) -> HttpRequest:
        url = f"{self.base_url(settings)}/"
        body = urlencode(form).encode("ascii")
        signed = signed_headers_for(
            "POST",
            httpx.URL(url),
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            body,
            credentials=credentials.aws(),
            region=settings.region,
            service=SERVICE,
            now=self.clock(),
        )
        # The exact bytes that were signed go on the wire.
        return HttpRequest("POST", url, headers=signed, content=body)

    def message_id(self, response: httpx.Response) -> str | None:
        found = _element("MessageId", response.text)
        if found is None:
            result = json_body(response).get("PublishResponse")
            result = result.get("PublishResult") if isinstance(result, dict) else None
            message_id = result.get("MessageId") if isinstance(result, dict) else None
            found = str(message_id) if message_id else None
        return found or None

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        text = response.text
        code = _element("Code", text)
        detail = _element("Message", text)
        if code is None:
            error = json_body(response).get("Error")
            if isinstance(error, dict) and error.get("Code"):
                code, detail = str(error["Code"]), str(error.get("Message") or "")
        if code is None:
            return None
        detail = one_line(detail if detail is not None else error_detail(response))
        return ErrorCode(code, f"HTTP {response.status_code}: {code}: {detail}", detail)

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        if code.code in _INVALID_PARAMETER:
            # "Invalid parameter: PhoneNumber Reason: +1555 is not valid to publish to".
            return RecipientError if "phonenumber" in code.detail.lower() else IntegrationError
        return super().error_class(code, response)


def build_form(message: Message, to: str, settings: SnsSettings) -> list[tuple[str, str]]:
    """The documented Publish form for one phone number, in a fixed order."""
    form = [
        ("Action", "Publish"),
        ("Version", API_VERSION),
        ("PhoneNumber", to),
        ("Message", message_text(SnsProvider.name, message)),
    ]
    attributes: list[tuple[str, str]] = [("AWS.SNS.SMS.SMSType", settings.sms_type)]
    if settings.sender_id:
        attributes.append(("AWS.SNS.SMS.SenderID", settings.sender_id))
    if settings.origination_number:
        attributes.append(("AWS.MM.SMS.OriginationNumber", settings.origination_number))
    for index, (name, value) in enumerate(attributes, start=1):
        prefix = f"MessageAttributes.entry.{index}"
        form += [
            (f"{prefix}.Name", name),
            (f"{prefix}.Value.DataType", "String"),
            (f"{prefix}.Value.StringValue", value),
        ]
    return form
