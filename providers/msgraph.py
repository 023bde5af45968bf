"""Microsoft Graph sendMail: https://learn.microsoft.com/en-us/graph/api/user-sendmail?view=graph-rest-1.0

Auth is the OAuth 2.0 client credentials grant of a Microsoft Entra app registration
(https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
``POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`` with ``client_id``,
``client_secret``, ``scope=https://graph.microsoft.com/.default`` and
``grant_type=client_credentials`` answers ``{"access_token", "expires_in"}``; the token is
cached per app until shortly before it expires (the app needs the ``Mail.Send`` application
permission). Then ``POST https://graph.microsoft.com/v1.0/users/{sender}/sendMail`` with
``{"message": {"subject", "body": {"contentType", "content"}, "from", "toRecipients",
"replyTo", "attachments"}, "saveToSentItems"}`` answers ``202 Accepted`` with no body and no id.

Errors (https://learn.microsoft.com/en-us/graph/errors) are ``{"error": {"code", "message"}}``:
401 ``InvalidAuthenticationToken`` (an expired or revoked token: a new one is fetched and the
send tried once more, then the integration is at fault), 403 ``ErrorAccessDenied`` /
``ErrorSendAsDenied`` (no Mail.Send or no right to send as that mailbox), 404
``ErrorInvalidUser``/``ResourceNotFound``/``MailboxNotEnabledForRESTAPI`` (no such sender
mailbox), 400 ``ErrorInvalidRecipients`` (the recipient's address), 413
``ErrorMessageSizeExceeded``, 429 throttling and 503/504 with ``Retry-After``
(https://learn.microsoft.com/en-us/graph/throttling). sendMail takes no idempotency key.

Not an :class:`~providers.http_provider.HttpProvider`: a send may fetch a token first and, after a
401, once more.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from providers.base import ChannelType, CheckResult, Credentials, Message, Provider, SendResult
from providers.email_common import EmailSenderSettings, base64_text, recipient_email
from providers.errors import (
    MAX_DETAIL,
    IntegrationError,
    ProviderError,
    RecipientError,
    RetryableError,
)
from providers.http import ErrorClass, classify_status, json_body, send_request
from providers.jwt_auth import CachedToken, Clock, TokenCache, fingerprint, request_token

TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105 - a URL
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SEND_URL = "https://graph.microsoft.com/v1.0/users/{sender}/sendMail"

#: Refresh a cached access token this many seconds before it expires (Entra tokens last 60-90
#: minutes).
TOKEN_REFRESH_MARGIN = 300.0

#: Graph error codes that settle the outcome whatever the status.
ERROR_CODES: Mapping[str, ErrorClass] = MappingProxyType(
    {
        "ErrorInvalidRecipients": RecipientError,
        "ErrorMessageSizeExceeded": RecipientError,
        "ErrorAccessDenied": IntegrationError,
        "ErrorSendAsDenied": IntegrationError,
        "Authorization_RequestDenied": IntegrationError,
        "ErrorInvalidUser": IntegrationError,
        "ResourceNotFound": IntegrationError,
        "MailboxNotEnabledForRESTAPI": IntegrationError,
        "ErrorQuotaExceeded": IntegrationError,
        "InvalidAuthenticationToken": IntegrationError,
        "ApplicationThrottled": RetryableError,
        "TooManyRequests": RetryableError,
        "ServiceNotAvailable": RetryableError,
    }
)


class MsGraphCredentials(Credentials):
    #: The directory (tenant) id or a verified domain of the tenant; part of the token URL.
    tenant_id: str = Field(pattern=r"^[A-Za-z0-9.-]+$")
    #: The app registration's application (client) id and one of its client secrets.
    client_id: str
    client_secret: SecretStr


class MsGraphSettings(EmailSenderSettings):
    """``from_email`` is the mailbox that sends (its user principal name): the app must be
    allowed to send as it."""

    #: Keep a copy in the sender mailbox's Sent Items.
    save_to_sent_items: bool = False


class MsGraphProvider(Provider[MsGraphCredentials, MsGraphSettings]):
    """Sends one message through Graph's sendMail with an app-only access token."""

    name = "msgraph"
    display_name = "Microsoft Graph (Outlook / Exchange Online)"
    channel = ChannelType.EMAIL
    credentials_model = MsGraphCredentials
    settings_model = MsGraphSettings
    supports_html = True
    #: sendMail takes a request of 4 MB at most, file attachments included (3 MB each).
    max_attachments = 10

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._tokens = TokenCache(clock)

    async def send(
        self,
        message: Message,
        credentials: MsGraphCredentials,
        settings: MsGraphSettings,
        client: httpx.AsyncClient,
    ) -> SendResult:
        body = build_request(message, recipient_email(self.name, message), settings)
        response = await self._post(credentials, settings, client, body)
        if response.is_success:
            return SendResult(status_code=response.status_code)
        raise self._classify(response)

    async def check(
        self,
        credentials: MsGraphCredentials,
        settings: MsGraphSettings,
        client: httpx.AsyncClient,
    ) -> CheckResult | None:
        """Obtain a token (nothing is sent) and read the permissions it carries."""
        try:
            token = await self._token(credentials, client)
        except ProviderError as exc:
            return CheckResult(ok=False, detail=str(exc))
        roles = _roles(token)
        if "Mail.Send" not in roles:
            return CheckResult(
                ok=False, detail="token obtained, but the app lacks the Mail.Send permission"
            )
        return CheckResult(ok=True, detail="token obtained with the Mail.Send permission")

    async def _post(
        self,
        credentials: MsGraphCredentials,
        settings: MsGraphSettings,
        client: httpx.AsyncClient,
        body: dict[str, Any],
    ) -> httpx.Response:
        """The sendMail answer; a 401 drops the token and is tried once with a fresh one."""
        url = SEND_URL.format(sender=quote(settings.from_email, safe="@"))
        response = await self._post_once(credentials, client, url, body)
        if response.status_code == 401:
            response = await self._post_once(credentials, client, url, body)
        return response

    async def _post_once(
        self,
        credentials: MsGraphCredentials,
        client: httpx.AsyncClient,
        url: str,
        body: dict[str, Any],
    ) -> httpx.Response:
        token = await self._token(credentials, client)
        response = await send_request(
            self.name, client, "POST", url, headers={"Authorization": f"Bearer {token}"}, json=body
        )
        if response.status_code == 401:
            # Revoked or expired early: forget it, so the retry and later sends get a new one.
            self._tokens.drop(_credentials_key(credentials), token)
        return response

    async def _token(self, credentials: MsGraphCredentials, client: httpx.AsyncClient) -> str:
        return await self._tokens.get(
            _credentials_key(credentials), lambda: self._exchange(credentials, client)
        )

    async def _exchange(
        self, credentials: MsGraphCredentials, client: httpx.AsyncClient
    ) -> CachedToken:
        return await request_token(
            self.name,
            client,
            TOKEN_URL.format(tenant=credentials.tenant_id),
            {
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret.get_secret_value(),
                "scope": GRAPH_SCOPE,
                "grant_type": "client_credentials",
            },
            now=self._clock(),
            refresh_margin=TOKEN_REFRESH_MARGIN,
        )

    def _classify(self, response: httpx.Response) -> ProviderError:
        error = json_body(response).get("error")
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or "") or None
        text = " ".join(str(error.get("message") or "").split())
        reason = f"HTTP {response.status_code} {code or ''}: {text}".strip().rstrip(":")
        table: dict[int, ErrorClass] = {}
        if code is not None and code in ERROR_CODES:
            table[response.status_code] = ERROR_CODES[code]
        return classify_status(
            self.name, response, table=table, message=reason[:MAX_DETAIL], provider_code=code
        )


def _credentials_key(credentials: MsGraphCredentials) -> str:
    return fingerprint(
        credentials.tenant_id, credentials.client_id, credentials.client_secret.get_secret_value()
    )


def _roles(token: str) -> list[str]:
    """The ``roles`` claim of an access token (read, not verified: Graph verifies it)."""
    with contextlib.suppress(Exception):
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        roles = claims.get("roles")
        if isinstance(roles, list):
            return [str(role) for role in roles]
    return []


def _recipient(address: str, name: str | None) -> dict[str, Any]:
    email: dict[str, str] = {"address": address}
    if name:
        email["name"] = name
    return {"emailAddress": email}


def build_request(message: Message, to_email: str, settings: MsGraphSettings) -> dict[str, Any]:
    """The documented sendMail body for one recipient: one body, HTML when there is one."""
    if message.html:
        content = {"contentType": "HTML", "content": message.html}
    else:
        content = {"contentType": "Text", "content": message.body}
    graph_message: dict[str, Any] = {
        "subject": message.subject or "",
        "body": content,
        "from": _recipient(settings.from_email, settings.from_name),
        "toRecipients": [_recipient(to_email, message.to.name)],
    }
    if settings.reply_to:
        graph_message["replyTo"] = [_recipient(settings.reply_to, None)]
    if message.attachments:
        graph_message["attachments"] = [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": attachment.filename,
                "contentType": attachment.content_type,
                "contentBytes": base64_text(attachment.content),
            }
            for attachment in message.attachments
        ]
    return {"message": graph_message, "saveToSentItems": settings.save_to_sent_items}
