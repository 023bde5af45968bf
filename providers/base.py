"""The provider interface: what every channel provider declares and the one coroutine it runs.

A provider knows a third-party HTTP (or SMTP) API and nothing else: it never touches the database
or Celery. The dispatcher reads the class attributes (limits, capabilities) and calls
:meth:`Provider.send` with a decrypted credentials model, a settings model, and a long-lived
pooled ``httpx.AsyncClient`` it owns. A provider whose send is one HTTP request implements
:class:`providers.http_provider.HttpProvider` instead of ``send``.
"""

from __future__ import annotations

import enum
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr

from providers.callbacks import CallbackRejectedError, CallbackRequest, ParsedCallback


class ChannelType(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    PUSH = "push"
    WEBHOOK = "webhook"
    IN_APP = "in_app"


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str
    content_type: str = "application/octet-stream"
    content: bytes


class Recipient(BaseModel):
    """Where a message goes, resolved by the dispatcher from the subscriber and overrides."""

    model_config = ConfigDict(frozen=True)

    subscriber_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    device_tokens: tuple[str, ...] = ()
    #: Chat destination: a channel or chat id (Slack bot, Telegram), when the integration does
    #: not fix it.
    chat_id: str | None = None
    #: A per-subscriber webhook URL (Slack/Discord/Teams incoming webhook, generic webhook).
    webhook_url: str | None = None


class Message(BaseModel):
    """One rendered message for one recipient on one channel."""

    model_config = ConfigDict(frozen=True)

    delivery_id: str
    channel: ChannelType
    to: Recipient
    subject: str | None = None
    body: str = ""
    html: str | None = None
    title: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    #: Free-form per-send options a workflow step may set (e.g. Slack blocks, FCM android config).
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """A stable key for providers that de-duplicate retried requests."""
        return f"dlv-{self.delivery_id}"


class SendResult(BaseModel):
    """A send the provider accepted."""

    model_config = ConfigDict(frozen=True)

    provider_message_id: str | None = None
    status_code: int | None = None
    #: Device tokens of the recipient the provider said are gone (others were sent to): the
    #: dispatcher removes them from the subscriber (:class:`providers.errors.ExpiredTokenError`).
    expired_tokens: tuple[str, ...] = ()


class CheckResult(BaseModel):
    """The answer of a harmless credentials check (``dispatcher integrations test``)."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    detail: str


class Credentials(BaseModel):
    """Base for credentials models: secrets are ``SecretStr`` so no repr shows them, and
    validation errors never quote the input (it may be a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Settings(BaseModel):
    """Base for non-secret integration settings (sender address, region, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(Settings):
    pass


class RateLimitSettings(Settings):
    """Settings of a provider whose pace belongs to the account or the sender (a phone number's
    messages per second): each integration may set its own rate, which replaces the provider's
    ``rate_limit_per_second``."""

    rate_limit_per_second: float | None = Field(default=None, gt=0)


class LongBody(enum.Enum):
    """What the dispatcher does with a body longer than the provider's ``max_body_length``."""

    #: The API rejects it: the next integration whose limits fit is tried, else the delivery fails.
    REFUSE = "refuse"
    #: The API cuts it itself: the dispatcher cuts it first, ending it with an ellipsis.
    TRUNCATE = "truncate"
    #: The API splits it into several messages itself: it is sent as it is.
    SPLIT = "split"


class Connector(Protocol):
    """Opens the TCP connections of a provider that does not speak HTTP (SMTP).

    The dispatcher sets one on every provider it runs: its connector connects only to an
    address its destination policy allows, and raises
    :class:`providers.http.RefusedConnectionError` otherwise. HTTP providers need none: the
    client they are handed is built on the same connector.
    """

    async def open_connection(self, host: str, port: int, *, timeout: float) -> socket.socket:
        """A connected, non-blocking socket to ``host``:``port``."""
        ...


CredentialsT = TypeVar("CredentialsT", bound=Credentials)
SettingsT = TypeVar("SettingsT", bound=Settings)


class Provider(ABC, Generic[CredentialsT, SettingsT]):
    """Base class of every provider. Subclasses set the class attributes (typed here once, so a
    subclass assigns them without repeating ``ClassVar``) and ``send``."""

    #: Registry name, stored on integrations: ``sendgrid``, ``twilio``, ...
    name: ClassVar[str]
    display_name: ClassVar[str]
    channel: ClassVar[ChannelType]
    credentials_model: ClassVar[type[Credentials]]
    settings_model: ClassVar[type[Settings]] = NoSettings

    # Limits and capabilities the dispatcher reads instead of hard-coding per provider
    # (dispatcher.sending.limits and dispatcher.sending.rate_limit enforce them).
    #: Characters of ``Message.body`` the API takes; ``long_body`` says what happens beyond.
    max_body_length: ClassVar[int | None] = None
    long_body: ClassVar[LongBody] = LongBody.REFUSE
    #: Attachments one message may carry; a message with more is not sent through it.
    max_attachments: ClassVar[int] = 0
    #: Whether the HTML part is sent; without it the provider is handed the text part only.
    supports_html: ClassVar[bool] = False
    returns_message_id: ClassVar[bool] = False
    supports_idempotency_key: ClassVar[bool] = False
    #: Requests per second one integration may make; ``None`` is no limit of ours.
    rate_limit_per_second: ClassVar[float | None] = None
    #: The API only speaks HTTP/2 (APNs): the dispatcher hands such a provider an HTTP/2 client.
    requires_http2: ClassVar[bool] = False
    #: Set by the dispatcher; a provider that opens its own connections uses it when set.
    connector: Connector | None = None
    #: Whether :meth:`parse_callback` reads this provider's delivery callbacks.
    supports_callbacks: ClassVar[bool] = False

    @abstractmethod
    async def send(
        self,
        message: Message,
        credentials: CredentialsT,
        settings: SettingsT,
        client: httpx.AsyncClient,
    ) -> SendResult:
        """Send one message or raise a :class:`providers.errors.ProviderError` subclass."""

    async def check(
        self,
        credentials: CredentialsT,
        settings: SettingsT,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        """Call a harmless endpoint to verify credentials; ``None`` when the API has none."""
        return None

    async def parse_callback(
        self,
        request: CallbackRequest,
        credentials: CredentialsT,
        settings: SettingsT,
        client: httpx.AsyncClient,
    ) -> ParsedCallback:
        """Verify a delivery callback and normalize its events (:mod:`providers.callbacks`).

        Raises :class:`providers.callbacks.CallbackRejectedError` when it is not authentic.
        ``client`` is only for fetching what a signature check needs (Amazon SNS's signing
        certificate), through the dispatcher's guarded connector.
        """
        raise CallbackRejectedError(self.name, "this provider has no delivery callbacks")

    @classmethod
    def supported_channels(cls) -> frozenset[ChannelType]:
        """Channels an integration of this provider may serve (fakes serve all)."""
        return frozenset({cls.channel})

    @classmethod
    def parse_credentials(cls, raw: dict[str, Any]) -> CredentialsT:
        """Validate a plain dict into this provider's credentials model (field-named errors)."""
        return cls.credentials_model.model_validate(raw)  # type: ignore[return-value]

    @classmethod
    def parse_settings(cls, raw: dict[str, Any] | None) -> SettingsT:
        return cls.settings_model.model_validate(raw or {})  # type: ignore[return-value]


def secret_values(model: BaseModel) -> Iterator[str]:
    """Every secret string held by a credentials model, for redaction."""
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if secret:
                yield secret
        elif isinstance(value, SecretBytes):
            raw = value.get_secret_value()
            if raw:
                yield raw.decode("utf-8", "replace")
        elif isinstance(value, BaseModel):
            yield from secret_values(value)
