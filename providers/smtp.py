"""SMTP submission (RFC 5321, RFC 6409) with aiosmtplib: https://aiosmtplib.readthedocs.io/

Builds one MIME message per delivery (text, optional HTML alternative, attachments) whose
``Message-ID`` is derived from the delivery id (and returned as the provider message id), and
submits it over implicit TLS (``ssl``, port 465), STARTTLS (``starttls``, port 587; the upgrade
is required, never skipped) or plain TCP (``none``). Answers are classified by reply code
(RFC 5321 section 4.2 and RFC 3463 enhanced codes): connection failures, timeouts and 4xx
replies are retried (a timeout or lost connection once the message went out with ``DATA`` is
ambiguous: the server may have accepted it); 530/534/535/538 are integration errors;
550/551/552/553 to ``RCPT TO`` reject the recipient (unless their enhanced code is a 5.7.x
policy refusal such as "relaying denied", which is the integration's fault). A server that
lacks STARTTLS or AUTH when the integration needs them, or a certificate that does not verify,
is the integration's fault too.
When the dispatcher set a :class:`~providers.base.Connector`, the TCP connection is opened
through it (so only to an address the dispatcher allows), and TLS still verifies ``host``.
Server replies are quoted in error messages with the password (and its base64 forms) removed.
"""

from __future__ import annotations

import base64
import email.utils
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from email.message import EmailMessage
from typing import Any, Literal

import aiosmtplib
import httpx
from pydantic import Field, SecretStr, model_validator

from providers.base import (
    ChannelType,
    CheckResult,
    Credentials,
    Message,
    Provider,
    SendResult,
    secret_values,
)
from providers.email_common import EmailSenderSettings, recipient_email
from providers.errors import (
    MAX_DETAIL,
    AmbiguousError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import DestinationRefusedError, RefusedConnectionError

Security = Literal["starttls", "ssl", "none"]
Stage = Literal["connect", "sender", "recipient", "data"]

AUTH_FAILURE_CODES = frozenset({530, 534, 535, 538})
RECIPIENT_REJECTED_CODES = frozenset({550, 551, 552, 553})
MAX_REPLY_TEXT = MAX_DETAIL
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


class SmtpCredentials(Credentials):
    """Both or neither: an open relay or an IP-allowlisted submission needs no login."""

    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> SmtpCredentials:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        return self


class SmtpSettings(EmailSenderSettings):
    host: str
    #: ``ssl`` is implicit TLS (port 465); ``starttls`` upgrades a plain connection (port 587).
    security: Security = "starttls"
    #: Defaults to the submission port of ``security``: 465 for ``ssl``, 587 otherwise.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: Seconds for connecting and for each command.
    timeout: float = 30.0
    validate_certs: bool = True
    #: Extra trusted CA certificate(s), PEM, for a relay with a private certificate authority.
    ca_cert_pem: str | None = None

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 465 if self.security == "ssl" else 587


class SmtpProvider(Provider[SmtpCredentials, SmtpSettings]):
    name = "smtp"
    display_name = "SMTP"
    channel = ChannelType.EMAIL
    credentials_model = SmtpCredentials
    settings_model = SmtpSettings
    returns_message_id = True
    supports_html = True
    #: SMTP has no attachment count limit; servers limit the total size (SIZE extension).
    max_attachments = 100

    async def send(
        self,
        message: Message,
        credentials: SmtpCredentials,
        settings: SmtpSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        """Submit ``message``; ``client`` is unused (SMTP is not HTTP)."""
        address = recipient_email(self.name, message)
        try:
            mime = build_email(message, settings)
        except ValueError as exc:
            # A header the email package refuses (CR/LF in a subject or name): this message's.
            raise RecipientError(
                self.name, f"cannot build the message: {_short(str(exc))}"
            ) from None
        failure: ProviderError | None = None
        smtp: SubmittingSMTP | None = None
        try:
            smtp = await self._session(credentials, settings)
            # Entering connects, negotiates TLS and logs in; leaving quits.
            async with smtp:
                await smtp.send_message(mime, sender=settings.from_email, recipients=[address])
        except Exception as exc:
            failure = classify_smtp_error(self.name, exc, secrets=_secrets(credentials))
            if smtp is not None and smtp.message_sent and _without_reply(exc, failure):
                failure = AmbiguousError(
                    self.name, f"{failure.reason} after DATA; the server may have accepted it"
                )
        if failure is not None:
            # Raised outside the handler so no __context__ keeps the server's raw reply.
            raise failure
        return SendResult(provider_message_id=str(mime["Message-ID"]))

    async def check(
        self,
        credentials: SmtpCredentials,
        settings: SmtpSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        """Connect, negotiate TLS, log in when configured, and quit without sending."""
        try:
            smtp = await self._session(credentials, settings)
            async with smtp:
                await smtp.noop()
        except Exception as exc:
            error = classify_smtp_error(self.name, exc, secrets=_secrets(credentials))
            return CheckResult(ok=False, detail=str(error))
        login = " and logged in" if credentials.username else ""
        return CheckResult(
            ok=True, detail=f"connected to {settings.host}:{settings.effective_port}{login}"
        )

    async def _session(
        self, credentials: SmtpCredentials, settings: SmtpSettings
    ) -> SubmittingSMTP:
        """The SMTP session, on a socket from the dispatcher's connector when it set one."""
        if self.connector is None:
            return _smtp_client(credentials, settings)
        sock = await self.connector.open_connection(
            settings.host, settings.effective_port, timeout=settings.timeout
        )
        return _smtp_client(credentials, settings, sock=sock)


def build_email(message: Message, settings: SmtpSettings) -> EmailMessage:
    """The MIME message for ``message``: text, optional HTML alternative, then attachments."""
    mime = EmailMessage()
    mime["From"] = email.utils.formataddr((settings.from_name or "", settings.from_email))
    mime["To"] = email.utils.formataddr((message.to.name or "", message.to.email or ""))
    if settings.reply_to:
        mime["Reply-To"] = settings.reply_to
    mime["Subject"] = message.subject or ""
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = message_id(message.delivery_id, settings.from_email)
    mime.set_content(message.body)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return mime


def message_id(delivery_id: str, from_address: str) -> str:
    """A stable ``Message-ID`` for a delivery: ``<delivery-id@sender-domain>``."""
    domain = from_address.rpartition("@")[2] or "localhost"
    return f"<{_MSGID_UNSAFE.sub('-', delivery_id)}@{domain}>"


def classify_smtp_error(  # noqa: PLR0911
    provider: str, exc: BaseException, *, secrets: Iterable[str] = ()
) -> ProviderError:
    """Map an aiosmtplib (or socket/TLS) failure to its error class, without secrets.

    ``secrets`` (the password) are cut out of any server reply quoted in the message, in case a
    server echoes what it was sent.
    """
    if isinstance(exc, RefusedConnectionError):
        return DestinationRefusedError(provider, exc)
    scrub = _scrubber(secrets)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return _from_reply(provider, refused.code, scrub(refused.message), "recipient")
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return _from_reply(provider, exc.code, scrub(exc.message), "recipient")
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return _from_reply(provider, exc.code, scrub(exc.message), "sender")
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return _from_reply(provider, exc.code, scrub(exc.message), "data")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _from_reply(provider, exc.code, scrub(exc.message), "connect")
    if any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _chain(exc)):
        return IntegrationError(provider, "TLS certificate verification failed")
    if isinstance(exc, TimeoutError):
        return RetryableError(provider, f"timeout ({type(exc).__name__})")
    if isinstance(exc, ConnectionError | ssl.SSLError):
        return RetryableError(provider, f"connection failed ({type(exc).__name__})")
    if isinstance(exc, aiosmtplib.SMTPException):
        # No reply code: aiosmtplib's own refusals, e.g. "SMTP STARTTLS extension not supported
        # by server." or "The SMTP AUTH extension is not supported by this server.": the
        # integration asks for something this server does not offer.
        return IntegrationError(provider, f"SMTP session refused: {_short(scrub(exc.message))}")
    if isinstance(exc, OSError):
        return RetryableError(provider, f"connection failed ({type(exc).__name__})")
    return IntegrationError(provider, f"unexpected SMTP failure ({type(exc).__name__})")


def _from_reply(provider: str, code: int, text: str, stage: Stage) -> ProviderError:
    detail = f"SMTP {code} at {stage}: {_short(text)}"
    provider_code = str(code)
    if 400 <= code < 500:
        return RetryableError(provider, detail, provider_code=provider_code)
    policy = text.lstrip().startswith("5.7.")
    if code in AUTH_FAILURE_CODES:
        return IntegrationError(provider, detail, provider_code=provider_code)
    if stage == "recipient" and code in RECIPIENT_REJECTED_CODES and not policy:
        return RecipientError(provider, detail, provider_code=provider_code)
    if stage == "data" and 500 <= code < 600 and not policy:
        # The server refused this message's content (size, content filter): permanent for it.
        return RecipientError(provider, detail, provider_code=provider_code)
    return IntegrationError(provider, detail, provider_code=provider_code)


class SubmittingSMTP(aiosmtplib.SMTP):
    """An SMTP session that knows whether the message itself went out (``DATA``)."""

    message_sent = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.message_sent = True
        return await super().data(*args, **kwargs)


def _without_reply(exc: BaseException, failure: ProviderError) -> bool:
    """A transient failure the server did not answer (a timeout, a lost connection)."""
    return type(failure) is RetryableError and not isinstance(exc, aiosmtplib.SMTPResponseException)


def _smtp_client(
    credentials: SmtpCredentials, settings: SmtpSettings, *, sock: socket.socket | None = None
) -> SubmittingSMTP:
    """A session to ``settings.host`` (also the name TLS verifies), over ``sock`` when given."""
    return SubmittingSMTP(
        hostname=settings.host,
        port=None if sock is not None else settings.effective_port,
        sock=sock,
        username=credentials.username,
        password=credentials.password.get_secret_value() if credentials.password else None,
        use_tls=settings.security == "ssl",
        start_tls=settings.security == "starttls",
        timeout=settings.timeout,
        tls_context=_tls_context(settings),
    )


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=settings.ca_cert_pem or None)
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _secrets(credentials: SmtpCredentials) -> list[str]:
    """The password, and the ``AUTH PLAIN`` string that carries it (base64-encoded on the wire)."""
    secrets = list(secret_values(credentials))
    if credentials.username and credentials.password:
        secrets.append(f"\0{credentials.username}\0{credentials.password.get_secret_value()}")
    return secrets


def _scrubber(secrets: Iterable[str]) -> Callable[[str], str]:
    """Replace each secret, and its base64 forms as AUTH PLAIN/LOGIN send it, in a reply text."""
    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        forms.add(base64.b64encode(secret.encode()).decode("ascii"))
    ordered = sorted((form for form in forms if form), key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in ordered:
            text = text.replace(form, "***")
        return text

    return scrub


def _short(text: str) -> str:
    return " ".join(text.split())[:MAX_REPLY_TEXT]
