"""SMTP against a real local server (aiosmtpd): plain, STARTTLS and implicit TLS, with AUTH.

The HTTP contract harness does not apply (SMTP is not HTTP); these tests cover the same table:
validation, success with message id, bad credentials, invalid recipient, transient refusals,
connection failures, timeout, and redaction of the password.
"""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from providers.base import Attachment, ChannelType, CheckResult, Message, Recipient, SendResult
from providers.errors import (
    AmbiguousError,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.smtp import SmtpProvider, classify_smtp_error, message_id
from tests.providers.harness import run

HOST = "127.0.0.1"
USERNAME = "mailer"
PASSWORD = "SECRET-smtp-password"
PASSWORD_B64 = base64.b64encode(PASSWORD.encode()).decode()
PLAIN_B64 = base64.b64encode(f"\0{USERNAME}\0{PASSWORD}".encode()).decode()

MESSAGE = Message(
    delivery_id="d-1",
    channel=ChannelType.EMAIL,
    to=Recipient(email="ada@example.com", name="Ada Lovelace"),
    subject="Hello",
    body="Hi Ada",
    html="<p>Hi Ada</p>",
)


# -- a real SMTP server ------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None


@dataclass
class Recorder:
    """An aiosmtpd handler: refuses some recipients by local part and records what it accepts.

    ``hangup`` recipients lose the connection at ``RCPT TO``; ``vanish`` ones after the message
    was received (accepted, then no answer)."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.partition("@")[0]
        if local == "unknown":
            return "550 5.1.1 <unknown@example.com>: Recipient address rejected: User unknown"
        if local == "relay":
            return "550 5.7.1 Relaying denied"
        if local == "busy":
            return "450 4.2.1 Mailbox busy, try again later"
        if local == "hangup":
            assert server.transport is not None
            server.transport.abort()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.original_content or b""),
                tls=server.transport.get_extra_info("sslcontext") is not None,
                login=login,
            )
        )
        if any(address.startswith("vanish@") for address in envelope.rcpt_tos):
            server.transport.abort()
        return "250 2.0.0 Ok: queued as 4F2A1"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    assert isinstance(auth_data, LoginPassword)
    if auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


def echoing_authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """A careless server that quotes the password it was sent in its 535 reply."""
    password = auth_data.password.decode()
    encoded = base64.b64encode(password.encode()).decode()
    return AuthResult(
        success=False, handled=False, message=f"535 5.7.8 Bad password {password} ({encoded})"
    )


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname=HOST, port=port, **kwargs)
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


@dataclass(frozen=True)
class Tls:
    cert_pem: str
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 and a server context holding it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (directory / "cert.pem").write_text(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return Tls(cert_pem=cert_pem, server_context=context)


# -- helpers -----------------------------------------------------------------------------


def settings(port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "host": HOST,
        "port": port,
        "security": "none",
        "from_email": "noreply@example.com",
        "from_name": "Example",
        "reply_to": "help@example.com",
        "timeout": 5.0,
        **overrides,
    }


LOGIN = {"username": USERNAME, "password": PASSWORD}


def send(
    raw_settings: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    message: Message = MESSAGE,
) -> SendResult:
    provider = SmtpProvider()

    async def go() -> SendResult:
        async with httpx.AsyncClient() as client:
            return await provider.send(
                message,
                provider.parse_credentials(credentials or {}),
                provider.parse_settings(raw_settings),
                client,
            )

    return run(go())


def check(raw_settings: dict[str, Any], credentials: dict[str, Any] | None = None) -> CheckResult:
    provider = SmtpProvider()

    async def go() -> CheckResult | None:
        async with httpx.AsyncClient() as client:
            return await provider.check(
                provider.parse_credentials(credentials or {}),
                provider.parse_settings(raw_settings),
                client,
            )

    result = run(go())
    assert result is not None
    return result


def failure(
    raw_settings: dict[str, Any],
    credentials: dict[str, Any] | None = None,
    message: Message = MESSAGE,
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send(raw_settings, credentials, message)
    return caught.value


def parsed(received: Received) -> email.message.EmailMessage:
    message = email.message_from_bytes(received.content, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


# -- success -----------------------------------------------------------------------------


def test_plain_submission_delivers_the_documented_mime_message() -> None:
    attachment = Attachment(filename="a.pdf", content_type="application/pdf", content=b"%PDF-1")
    message = MESSAGE.model_copy(update={"attachments": (attachment,)})
    with smtp_server() as (port, recorder):
        result = send(settings(port), message=message)
    [received] = recorder.received
    assert received.mail_from == "noreply@example.com"
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.tls is False
    assert received.login is None
    mime = parsed(received)
    assert mime["From"] == "Example <noreply@example.com>"
    assert mime["To"] == "Ada Lovelace <ada@example.com>"
    assert mime["Reply-To"] == "help@example.com"
    assert mime["Subject"] == "Hello"
    assert mime["Message-ID"] == "<d-1@example.com>"
    assert result.provider_message_id == "<d-1@example.com>"
    text = mime.get_body(preferencelist=("plain",))
    html = mime.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Hi Ada"
    assert html.get_content().strip() == "<p>Hi Ada</p>"
    [part] = list(mime.iter_attachments())
    assert part.get_filename() == "a.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == b"%PDF-1"


def test_starttls_upgrades_then_logs_in(tls: Tls) -> None:
    with smtp_server(
        tls_context=tls.server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    ) as (port, recorder):
        result = send(settings(port, security="starttls", ca_cert_pem=tls.cert_pem), LOGIN)
    [received] = recorder.received
    assert received.tls is True
    assert received.login == USERNAME
    assert result.provider_message_id == "<d-1@example.com>"


def test_implicit_tls_connects_over_tls_and_logs_in(tls: Tls) -> None:
    with smtp_server(
        ssl_context=tls.server_context, authenticator=authenticator, auth_require_tls=False
    ) as (port, recorder):
        send(settings(port, security="ssl", ca_cert_pem=tls.cert_pem), LOGIN)
    [received] = recorder.received
    assert received.tls is True
    assert received.login == USERNAME


def test_port_defaults_follow_security() -> None:
    provider = SmtpProvider()
    base = {"host": HOST, "from_email": "noreply@example.com"}
    assert provider.parse_settings({**base, "security": "ssl"}).effective_port == 465
    assert provider.parse_settings({**base, "security": "starttls"}).effective_port == 587
    assert provider.parse_settings({**base, "port": 2525}).effective_port == 2525


def test_text_only_message_has_no_html_part() -> None:
    with smtp_server() as (port, recorder):
        send(settings(port), message=MESSAGE.model_copy(update={"html": None}))
    mime = parsed(recorder.received[0])
    assert mime.get_content_type() == "text/plain"
    assert mime.get_content().strip() == "Hi Ada"


# -- refusals ----------------------------------------------------------------------------


def test_unknown_recipient_550_is_recipient_error() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="unknown@example.com")})
    with smtp_server() as (port, recorder):
        error = failure(settings(port), message=message)
    assert type(error) is RecipientError
    assert error.provider_code == "550"
    assert "User unknown" in str(error)
    assert not recorder.received


def test_relaying_denied_550_5_7_1_is_integration_error() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="relay@example.com")})
    with smtp_server() as (port, _):
        error = failure(settings(port), message=message)
    assert type(error) is IntegrationError
    assert error.provider_code == "550"


def test_temporary_recipient_refusal_450_is_retryable() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(email="busy@example.com")})
    with smtp_server() as (port, _):
        error = failure(settings(port), message=message)
    assert isinstance(error, RetryableError)
    assert error.provider_code == "450"


def test_auth_failure_535_is_integration_error(tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = {"username": USERNAME, "password": "SECRET-wrong-password"}
    with smtp_server(
        tls_context=tls.server_context,
        require_starttls=True,
        authenticator=authenticator,
    ) as (port, recorder):
        error = failure(settings(port, security="starttls", ca_cert_pem=tls.cert_pem), wrong)
    assert type(error) is IntegrationError
    assert error.provider_code == "535"
    assert not recorder.received
    _assert_no_secret(error, caplog, "SECRET-wrong-password")


def test_password_echoed_by_the_server_is_redacted(
    tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(
        tls_context=tls.server_context,
        require_starttls=True,
        authenticator=echoing_authenticator,
    ) as (port, _):
        raw = settings(port, security="starttls", ca_cert_pem=tls.cert_pem)
        error = failure(raw, LOGIN)
        result = check(raw, LOGIN)
    assert type(error) is IntegrationError
    assert "Bad password ***" in str(error)
    _assert_no_secret(error, caplog, PASSWORD)
    assert result.ok is False
    assert PASSWORD not in result.detail
    assert PASSWORD_B64 not in result.detail


def test_credentials_repr_hides_the_password() -> None:
    credentials = SmtpProvider.parse_credentials(LOGIN)
    assert PASSWORD not in repr(credentials)
    assert PASSWORD not in str(credentials)


def _assert_no_secret(
    error: ProviderError, caplog: pytest.LogCaptureFixture, password: str
) -> None:
    forms = [password, base64.b64encode(password.encode()).decode()]
    texts = [str(error), repr(error), repr(error.__cause__), repr(error.__context__)]
    # Our side's log records; the test server's own protocol log ("mail.log") is the peer's.
    texts += [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    for text in texts:
        for form in forms:
            assert form not in text


# -- configuration the server cannot satisfy ---------------------------------------------


def test_starttls_required_but_not_offered_is_integration_error() -> None:
    with smtp_server() as (port, recorder):
        error = failure(settings(port, security="starttls"))
    assert type(error) is IntegrationError
    assert "STARTTLS" in str(error)
    assert not recorder.received


def test_login_when_the_server_offers_no_auth_is_integration_error() -> None:
    # aiosmtpd only advertises AUTH over TLS by default; this session stays plain.
    with smtp_server(authenticator=authenticator) as (port, recorder):
        error = failure(settings(port), LOGIN)
    assert type(error) is IntegrationError
    assert "AUTH" in str(error)
    assert not recorder.received


def test_untrusted_certificate_is_integration_error(tls: Tls) -> None:
    with smtp_server(tls_context=tls.server_context, require_starttls=True) as (port, recorder):
        error = failure(settings(port, security="starttls"))
    assert type(error) is IntegrationError
    assert "certificate" in str(error)
    assert not recorder.received


def test_unverified_certificate_is_accepted_when_validation_is_off(tls: Tls) -> None:
    with smtp_server(tls_context=tls.server_context, require_starttls=True) as (port, recorder):
        send(settings(port, security="starttls", validate_certs=False))
    assert recorder.received[0].tls is True


# -- transport failures ------------------------------------------------------------------


def test_connection_refused_is_retryable() -> None:
    error = failure(settings(free_port()))
    assert isinstance(error, RetryableError)
    assert "connection failed" in str(error)


def to(address: str) -> Message:
    return MESSAGE.model_copy(update={"to": Recipient(email=address)})


def test_a_connection_lost_after_data_is_ambiguous() -> None:
    with smtp_server() as (port, recorder):
        error = failure(settings(port), message=to("vanish@example.com"))
    assert len(recorder.received) == 1
    assert type(error) is AmbiguousError
    assert str(error).endswith("after DATA; the server may have accepted it")


def test_a_connection_lost_before_data_is_retryable_not_ambiguous() -> None:
    with smtp_server() as (port, recorder):
        error = failure(settings(port), message=to("hangup@example.com"))
    assert recorder.received == []
    assert type(error) is RetryableError


def test_server_that_never_greets_times_out_retryably() -> None:
    with closing(socket.socket()) as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        error = failure(settings(port, timeout=0.5))
    assert isinstance(error, RetryableError)
    assert "timeout" in str(error)


# -- validation before connecting --------------------------------------------------------


def test_recipient_without_email_fails_before_connecting() -> None:
    message = MESSAGE.model_copy(update={"to": Recipient(phone="+15550000000")})
    error = failure(settings(free_port()), message=message)
    assert type(error) is RecipientError


def test_header_injection_in_subject_is_recipient_error() -> None:
    message = MESSAGE.model_copy(update={"subject": "Hi\r\nBcc: victim@example.com"})
    with smtp_server() as (port, recorder):
        error = failure(settings(port), message=message)
    assert type(error) is RecipientError
    assert not recorder.received


@pytest.mark.parametrize("credentials", [{"username": USERNAME}, {"password": PASSWORD}])
def test_username_and_password_come_together(credentials: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="both username and password"):
        SmtpProvider.parse_credentials(credentials)


def test_from_email_is_validated() -> None:
    with pytest.raises(ValidationError, match="from_email"):
        SmtpProvider.parse_settings({"host": HOST, "from_email": "not-an-address"})


# -- check ------------------------------------------------------------------------------


def test_check_logs_in_without_sending(tls: Tls) -> None:
    with smtp_server(
        tls_context=tls.server_context, require_starttls=True, authenticator=authenticator
    ) as (port, recorder):
        result = check(settings(port, security="starttls", ca_cert_pem=tls.cert_pem), LOGIN)
    assert result.ok is True
    assert "logged in" in result.detail
    assert not recorder.received


def test_check_reports_a_refused_connection() -> None:
    result = check(settings(free_port()))
    assert result.ok is False
    assert "connection failed" in result.detail


# -- classification table ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender address rejected", "a@b"),
            IntegrationError,
        ),
        (aiosmtplib.SMTPDataError(552, "5.3.4 Message size exceeds fixed limit"), RecipientError),
        (aiosmtplib.SMTPDataError(554, "5.7.1 Spam message rejected"), IntegrationError),
        (aiosmtplib.SMTPDataError(451, "4.3.0 Temporary failure"), RetryableError),
        (aiosmtplib.SMTPConnectResponseError(421, "Too many connections"), RetryableError),
        (
            aiosmtplib.SMTPAuthenticationError(534, "5.7.9 Please log in with your browser"),
            IntegrationError,
        ),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), RetryableError),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server"), IntegrationError),
    ],
)
def test_reply_classification(exc: Exception, expected: type[ProviderError]) -> None:
    assert type(classify_smtp_error("smtp", exc)) is expected


def test_message_id_is_stable_and_safe() -> None:
    assert message_id("d 1<x>", "noreply@example.com") == "<d-1-x-@example.com>"
    assert message_id("d-1", "noreply@example.com") == message_id("d-1", "noreply@example.com")


def test_auth_plain_blob_echoed_by_the_server_is_redacted(tls: Tls) -> None:
    def echo_plain(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 got {PLAIN_B64}")

    with smtp_server(
        tls_context=tls.server_context, require_starttls=True, authenticator=echo_plain
    ) as (port, _):
        error = failure(settings(port, security="starttls", ca_cert_pem=tls.cert_pem), LOGIN)
    assert type(error) is IntegrationError
    assert "got ***" in str(error)
    assert PLAIN_B64 not in str(error)
