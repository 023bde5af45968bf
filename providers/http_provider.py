"""The template of a provider whose send is one HTTP request.

:meth:`HttpProvider.send` is written once, on hooks a provider overrides::

    request = build_request(message, credentials, settings)    the provider's request
    response = exchange(client, request)                       send_request(): transport errors
                                                               are already classified
    error = rejection(response, request)                       None when the answer accepts
    SendResult(message_id(response), response.status_code)

A refused answer is classified from data first, as apprise's ``SENDGRID_HTTP_ERROR_MAP`` does:
``error_codes`` maps the provider's own codes (read by :meth:`~HttpProvider.error_code`) to an
error class and ``status_errors`` maps statuses over :data:`providers.http.DEFAULT_STATUS_TABLE`.
Hooks cover what a table cannot say: :meth:`~HttpProvider.error_class` for a code whose meaning
depends on its text, :meth:`~HttpProvider.rejection` for APIs that refuse inside a 2xx.

Providers that make several requests per message (a token exchange, one request per device
token, batches) implement :meth:`Provider.send` themselves.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Generic

import httpx
from typing_extensions import TypeVar

from providers.base import CredentialsT, Message, Provider, SendResult, SettingsT
from providers.errors import ProviderError
from providers.http import ErrorClass, classify_status, json_body, retry_after_header, send_request

#: ``files=`` of a multipart request: ``(name, (file name, content, content type))`` for a file,
#: ``(name, (None, content))`` for a plain form field.
RequestFiles = Sequence[tuple[str, tuple[str, bytes, str] | tuple[None, bytes]]]


@dataclass(frozen=True)
class HttpRequest:
    """One request as a provider declares it; :meth:`HttpProvider.exchange` sends it.

    Only the method shows in the repr: a URL may carry a token, headers and auth carry
    credentials, and bodies carry the recipient's message (Vonage's form even its API secret).
    """

    method: str
    url: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=None, repr=False)
    data: Mapping[str, str] | None = field(default=None, repr=False)
    files: RequestFiles | None = field(default=None, repr=False)
    content: bytes | None = field(default=None, repr=False)
    auth: httpx.Auth | tuple[str, str] | None = field(default=None, repr=False)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``httpx.AsyncClient.request`` this request sets."""
        arguments: dict[str, Any] = {"headers": self.headers} if self.headers else {}
        for name in ("json", "data", "files", "content", "auth"):
            value = getattr(self, name)
            if value is not None:
                arguments[name] = value
        return arguments


@dataclass(frozen=True)
class ErrorCode:
    """What a refused answer says of itself."""

    #: The provider's own code (``21211``, ``validation_error``, ``MessageRejected``), if any:
    #: the key into ``error_codes`` and the error's ``provider_code``.
    code: str | None
    #: The error's message; ``None`` lets the template write ``HTTP <status>: <body excerpt>``.
    text: str | None = None
    #: The provider's own explanation, for an :meth:`HttpProvider.error_class` that reads it.
    detail: str = ""


RequestT = TypeVar("RequestT", bound=HttpRequest, default=HttpRequest)


class HttpProvider(Provider[CredentialsT, SettingsT], Generic[CredentialsT, SettingsT, RequestT]):
    """A provider whose send is one HTTP request; subclasses implement :meth:`build_request`.

    ``RequestT`` is a subclass of :class:`HttpRequest` when classifying an answer needs more than
    the request (who chose a chat webhook, say).
    """

    #: Where an accepting JSON answer keeps the message id: a key, or a dotted path (``data.id``).
    message_id_key: ClassVar[str | None] = None
    #: The provider's error codes (see :meth:`error_code`) and what they mean, whatever the HTTP
    #: status says.
    error_codes: ClassVar[Mapping[str, ErrorClass]] = MappingProxyType({})
    #: HTTP statuses this API uses unlike :data:`providers.http.DEFAULT_STATUS_TABLE`.
    status_errors: ClassVar[Mapping[int, ErrorClass]] = MappingProxyType({})

    async def send(
        self,
        message: Message,
        credentials: CredentialsT,
        settings: SettingsT,
        client: httpx.AsyncClient,
    ) -> SendResult:
        request = self.build_request(message, credentials, settings)
        response = await self.exchange(client, request)
        error = self.rejection(response, request)
        if error is not None:
            raise error
        return SendResult(
            provider_message_id=self.message_id(response), status_code=response.status_code
        )

    @abstractmethod
    def build_request(
        self, message: Message, credentials: CredentialsT, settings: SettingsT
    ) -> RequestT:
        """The request that sends ``message``; a :class:`~providers.errors.RecipientError` or
        :class:`~providers.errors.IntegrationError` when it cannot be built (no address...)."""

    async def exchange(self, client: httpx.AsyncClient, request: RequestT) -> httpx.Response:
        """Send ``request``: the answer, whatever its status, or a :class:`RetryableError`."""
        return await send_request(
            self.name, client, request.method, request.url, **request.arguments()
        )

    def message_id(self, response: httpx.Response) -> str | None:
        """The provider's id of the message in an accepting answer, found at ``message_id_key``."""
        if self.message_id_key is None:
            return None
        value: Any = json_body(response)
        for key in self.message_id_key.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return str(value) if value else None

    def rejection(self, response: httpx.Response, request: RequestT) -> ProviderError | None:
        """The error an answer means, or ``None`` when it accepted the message: by default a 2xx
        accepts and anything else is :meth:`classify`-ed."""
        return None if response.is_success else self.classify(response)

    def classify(self, response: httpx.Response) -> ProviderError:
        """The error of a refused answer: its :meth:`error_code` through :meth:`error_class`,
        else its status through ``status_errors`` over the shared status table."""
        return self.coded_error(response, self.error_code(response))

    def error_code(self, response: httpx.Response) -> ErrorCode | None:
        """The provider's code and message in a refused answer; none by default."""
        return None

    def error_class(self, code: ErrorCode, response: httpx.Response) -> ErrorClass | None:
        """The class ``code`` settles, ``None`` to decide by status: ``error_codes`` by default;
        override for codes whose meaning depends on their text or status."""
        return self.error_codes.get(code.code) if code.code is not None else None

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds a retryable answer asks us to wait: its ``Retry-After`` by default."""
        return retry_after_header(response)

    def coded_error(
        self,
        response: httpx.Response,
        code: ErrorCode | None,
        error_class: ErrorClass | None = None,
    ) -> ProviderError:
        """The error for ``response`` saying ``code``: ``error_class`` when given, else the
        class :meth:`error_class` or the status settles."""
        if error_class is None and code is not None:
            error_class = self.error_class(code, response)
        table = self.status_errors
        if error_class is not None:
            table = {**table, response.status_code: error_class}
        return classify_status(
            self.name,
            response,
            table=table,
            message=code.text if code is not None else None,
            provider_code=code.code if code is not None else None,
            retry_after=self.retry_after(response),
        )
