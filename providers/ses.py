"""Amazon SES API v2 SendEmail: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html

``POST https://email.{region}.amazonaws.com/v2/email/outbound-emails`` with a JSON body
(``FromEmailAddress``, ``Destination.ToAddresses``, ``ReplyToAddresses``, ``Content.Simple`` with
``Subject``, ``Body.Text``/``Body.Html`` and ``Attachments``
(https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_Attachment.html: ``FileName``,
base64 ``RawContent``, ``ContentType``, ``ContentDisposition``), ``EmailTags``,
``ConfigurationSetName``), signed with AWS Signature Version 4 for service ``ses``
(:mod:`providers.aws_sigv4`). Success is ``200 {"MessageId": "..."}``.

Failures carry the error type in the ``X-Amzn-ErrorType`` header (or ``__type`` in the body) and
``{"message": ...}``. SendEmail's documented errors: ``AccountSuspendedException``,
``SendingPausedException``, ``MailFromDomainNotVerifiedException``, ``NotFoundException``,
``LimitExceededException`` (integration), ``TooManyRequestsException`` 429 "Maximum sending rate
exceeded." (retry), ``MessageRejected`` (integration when an identity is not verified, as in the
sandbox; otherwise the message's own fault, e.g. a virus) and ``BadRequestException`` (the
recipient when the message is an address syntax error, e.g. "Missing final '@domain'");
plus the common errors (https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html):
403 signature/credential errors and ``ThrottlingException``. SES v2 takes no idempotency key.
``GET /v2/email/account`` (GetAccount) reads the sending status without sending anything.

Addresses follow SES's rules: a display name with non-ASCII characters is RFC 2047 encoded and a
non-ASCII domain is sent as punycode; SES does not support SMTPUTF8, so a non-ASCII local part is
refused before any request.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from providers import ses_callbacks
from providers.aws_sigv4 import AwsCredentials, signed_headers_for
from providers.base import ChannelType, CheckResult, Credentials, Message
from providers.callbacks import CallbackRequest, ParsedCallback
from providers.email_common import (
    EmailSenderSettings,
    base64_text,
    body_parts,
    recipient_email,
    tag_value,
)
from providers.errors import MAX_DETAIL, IntegrationError, RecipientError, RetryableError
from providers.http import ErrorClass, error_detail, json_body
from providers.http_provider import ErrorCode, HttpProvider, HttpRequest

SERVICE = "ses"
SEND_PATH = "/v2/email/outbound-emails"
ACCOUNT_PATH = "/v2/email/account"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")

#: Error types that settle the outcome whatever the HTTP status.
ERROR_TYPES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "AccountSuspendedException": IntegrationError,
        "SendingPausedException": IntegrationError,
        "MailFromDomainNotVerifiedException": IntegrationError,
        "NotFoundException": IntegrationError,
        "LimitExceededException": IntegrationError,
        "TooManyRequestsException": RetryableError,
        "ThrottlingException": RetryableError,
        "UnrecognizedClientException": IntegrationError,
        "InvalidSignatureException": IntegrationError,
        "SignatureDoesNotMatch": IntegrationError,
        "InvalidClientTokenId": IntegrationError,
        "IncompleteSignature": IntegrationError,
        "MissingAuthenticationToken": IntegrationError,
        "ExpiredTokenException": IntegrationError,
        "AccessDeniedException": IntegrationError,
    }
)

#: SES's address parser messages ("Missing final '@domain'", "Illegal address", "Domain contains
#: illegal character", "Local address contains control or whitespace"...).
_ADDRESS_SYNTAX = re.compile(
    r"illegal address|missing final '@domain'|domain contains|domain starts with|"
    r"domain ends with|local address|invalid address|address contains",
    re.IGNORECASE,
)
#: The same parser messages about our own sender are the integration's fault.
_SENDER_FIELD = re.compile(r"\b(from|source|reply)", re.IGNORECASE)


class SesCredentials(Credentials):
    access_key_id: str
    secret_access_key: SecretStr
    #: For temporary (STS) credentials.
    session_token: SecretStr | None = None

    def aws(self) -> AwsCredentials:
        return AwsCredentials(
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key.get_secret_value(),
            session_token=self.session_token.get_secret_value() if self.session_token else None,
        )


class SesSettings(EmailSenderSettings):
    #: The region the sending identity is verified in: ``us-east-1``, ``eu-west-1``...
    region: str
    configuration_set_name: str | None = None
    #: Overrides ``https://email.{region}.amazonaws.com`` (a VPC endpoint, a test server).
    base_url: str | None = None
    #: The ARN of the SNS topic the configuration set publishes its events to: delivery
    #: callbacks from any other topic (or all of them, without it) are refused.
    sns_topic_arn: str | None = None

    @field_validator("region")
    @classmethod
    def _looks_like_region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("region must be an AWS region code such as us-east-1")
        return value


class SesProvider(HttpProvider[SesCredentials, SesSettings]):
    name = "ses"
    display_name = "Amazon SES"
    channel = ChannelType.EMAIL
    credentials_model = SesCredentials
    settings_model = SesSettings
    returns_message_id = True
    message_id_key = "MessageId"
    supports_html = True
    # The API bounds the whole message (40 MB), not the number of files; this is our cap.
    max_attachments = 10
    error_codes = ERROR_TYPES
    supports_callbacks = True

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        #: The signing time, and the time SNS callbacks are checked at; tests pin it.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sns_certificates = ses_callbacks.CertificateCache()

    @staticmethod
    def base_url(settings: SesSettings) -> str:
        return (settings.base_url or f"https://email.{settings.region}.amazonaws.com").rstrip("/")

    def build_request(
        self, message: Message, credentials: SesCredentials, settings: SesSettings
    ) -> HttpRequest:
        to_email = ses_address(self.name, recipient_email(self.name, message))
        body = json.dumps(
            build_payload(message, to_email, settings), separators=(",", ":")
        ).encode()
        return self._signed(
            "POST", f"{self.base_url(settings)}{SEND_PATH}", body, credentials, settings
        )

    async def check(
        self,
        credentials: SesCredentials,
        settings: SesSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        request = self._signed(
            "GET", f"{self.base_url(settings)}{ACCOUNT_PATH}", b"", credentials, settings
        )
        response = await self.exchange(client, request)
        if not response.is_success:
            return CheckResult(ok=False, detail=str(self.classify(response)))
        account = json_body(response)
        if not account.get("SendingEnabled", False):
            return CheckResult(ok=False, detail="sending is disabled for this SES account")
        sandbox = (
            "" if account.get("ProductionAccessEnabled") else " (sandbox: verified recipients only)"
        )
        return CheckResult(ok=True, detail=f"credentials valid in {settings.region}{sandbox}")

    def _signed(
        self,
        method: str,
        url: str,
        body: bytes,
        credentials: SesCredentials,
        settings: SesSettings,
    ) -> HttpRequest:
        headers = {"Content-Type": "application/json"} if body else {}
        signed = signed_headers_for(
            method,
            httpx.URL(url),
            headers,
            body,
            credentials=credentials.aws(),
            region=settings.region,
            service=SERVICE,
            now=self.clock(),
        )
        # The exact bytes that were signed go on the wire.
        return HttpRequest(method, url, headers=signed, content=body)

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: SesCredentials,
        settings: SesSettings,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """An SNS message carrying SES events (:mod:`providers.ses_callbacks`)."""
        return await ses_callbacks.parse(
            self.name,
            request,
            topic_arn=settings.sns_topic_arn,
            certificates=self.sns_certificates,
            client=client,
            now=self.clock(),
        )

    def error_code(self, response: httpx.Response) -> ErrorCode:
        body = json_body(response)
        error_type = aws_error_type(response, body)
        detail = str(body.get("message") or body.get("Message") or error_detail(response))
        text = f"{error_type or 'HTTP ' + str(response.status_code)}: {detail}"[:MAX_DETAIL]
        return ErrorCode(error_type or None, text, detail)

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        detail = code.detail
        error_class = super().error_class(code, response)
        if code.code == "MessageRejected":
            # "Email address is not verified. The following identities failed the check...":
            # the sandbox or an unverified sender; anything else rejects this message's content.
            verified = "not verified" in detail.lower()
            error_class = IntegrationError if verified else RecipientError
        elif code.code == "BadRequestException":
            address = _ADDRESS_SYNTAX.search(detail) and not _SENDER_FIELD.search(detail)
            error_class = RecipientError if address else IntegrationError
        if error_class is RetryableError and "quota" in detail.lower():
            # "Daily message quota exceeded.": nothing leaves this account before the window ends.
            error_class = IntegrationError
        return error_class


def aws_error_type(response: httpx.Response, body: Mapping[str, Any]) -> str:
    """``MessageRejected`` from ``MessageRejected:http://internal.amazon.com/...`` or
    ``com.amazonaws.sesv2#MessageRejected``."""
    raw = response.headers.get("x-amzn-errortype") or body.get("__type") or body.get("code") or ""
    return str(raw).split(":", 1)[0].rpartition("#")[2]


def ses_address(provider: str, address: str) -> str:
    """``address`` as SES takes it: punycode domain; a non-ASCII local part cannot be sent."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise RecipientError(provider, "SES cannot send to a non-ASCII local part (no SMTPUTF8)")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise RecipientError(provider, "recipient domain is not a valid IDN") from None
    return f"{local}@{domain}"


def _mailbox(name: str | None, address: str) -> str:
    """``Name <address>``; formataddr RFC 2047-encodes a non-ASCII name, as SES requires."""
    return email.utils.formataddr((" ".join((name or "").split()), address))


def build_payload(message: Message, to_email: str, settings: SesSettings) -> dict[str, Any]:
    """The documented SendEmail body for a simple message to one recipient."""
    text, html = body_parts(message)
    body: dict[str, Any] = {}
    if text is not None:
        body["Text"] = {"Data": text, "Charset": "UTF-8"}
    if html is not None:
        body["Html"] = {"Data": html, "Charset": "UTF-8"}
    simple: dict[str, Any] = {
        "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
        "Body": body,
    }
    if message.attachments:
        simple["Attachments"] = [
            {
                "FileName": attachment.filename,
                "RawContent": base64_text(attachment.content),
                "ContentType": attachment.content_type,
                "ContentDisposition": "ATTACHMENT",
            }
            for attachment in message.attachments
        ]
    payload: dict[str, Any] = {
        "FromEmailAddress": _mailbox(settings.from_name, settings.from_email),
        "Destination": {"ToAddresses": [_mailbox(message.to.name, to_email)]},
        "Content": {"Simple": simple},
        # Tags come back on SNS/EventBridge event notifications.
        "EmailTags": [{"Name": "delivery_id", "Value": tag_value(message.delivery_id)}],
    }
    if settings.reply_to:
        payload["ReplyToAddresses"] = [settings.reply_to]
    if settings.configuration_set_name:
        payload["ConfigurationSetName"] = settings.configuration_set_name
    return payload
