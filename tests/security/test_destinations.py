"""Every destination a tenant can name in an integration is guarded where the connection is made.

Each provider's credentials and settings fields whose name says they may name a place (URL, URI,
host, endpoint, webhook, server, port, domain, region, callback, address) are listed here: either
as a case, sent through the guarded runtime with that field pointing at a loopback listener that
is not allow-listed (no connection may reach it, the send fails as refused), and again with the
listener allow-listed (it must be reached: the field really is a destination); or as an exemption
with its reason. A new provider's destination-like field fails the first test until it is one or
the other. A workflow's fetch step names a URL too, and so does an outbound webhook endpoint:
their cases are the last tests.
"""

from __future__ import annotations

import importlib
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from dispatcher.lifecycle.webhooks import EndpointError, checked_url
from dispatcher.runtime.url_guard import DestinationGuard
from dispatcher.sending.fetch import FetchRequest, perform
from dispatcher.sending.webhook_posting import Job, RefusedDestinationError, post
from providers.base import Message
from providers.errors import IntegrationError
from providers.http import DestinationRefusedError
from providers.registry import default_registry
from tests.security.connections import Listener, guarded_runtime, listening

DESTINATION_LIKE = re.compile(
    r"url|uri|host|endpoint|webhook|server|port|domain|region|callback|address"
)

#: Fields that match the pattern but name nothing the dispatcher connects to.
EXEMPT: dict[tuple[str, str], str] = {
    ("discord", "avatar_url"): "an image URL Discord's servers fetch, never the dispatcher",
    ("mattermost", "icon_url"): "an image URL the Mattermost server fetches, never the dispatcher",
    ("messagebird", "report_url"): "a status callback MessageBird calls, never the dispatcher",
    ("plivo", "url"): "a status callback Plivo calls, never the dispatcher",
    ("telnyx", "webhook_url"): "a status callback Telnyx calls, never the dispatcher",
    ("twilio", "status_callback"): "a status callback Twilio calls, never the dispatcher",
    ("vonage", "callback"): "a status callback Vonage calls, never the dispatcher",
    ("infobip_email", "notify_url"): "a status callback Infobip calls, never the dispatcher",
    ("infobip_sms", "notify_url"): "a status callback Infobip calls, never the dispatcher",
    ("sinch", "callback_url"): "a status callback Sinch calls, never the dispatcher",
    ("twilio_whatsapp", "status_callback"): "a status callback Twilio calls, never the dispatcher",
    ("whatsapp_business", "preview_url"): "a flag: whether WhatsApp shows a link preview",
    ("sns", "region"): "validated as an AWS region code: a label under amazonaws.com",
    ("mailgun", "domain"): "a path segment of the API URL, not a host",
    ("fake", "webhook_secret"): "verifies the fake provider's callbacks: a credential",
    ("fake_http", "webhook_secret"): "verifies the fake provider's callbacks: a credential",
    ("ses", "region"): "validated as an AWS region code: a label under amazonaws.com",
    ("smtp", "port"): "always paired with host, whose case connects to it",
    ("postmark", "server_token"): "a credential, not a place",
    **{
        (name, "webhook_url"): "its credentials validator admits only the provider's own https "
        "hosts; a subscriber's URL on allowed_webhook_hosts is the recipient's case "
        "(tests/dispatcher/runtime/test_guarded_connector.py)"
        for name in ("discord", "google_chat", "slack_webhook")
    },
    ("gotify", "allowed_webhook_hosts"): "a filter on a subscriber's message URL, held to "
    "base_url's host besides it (tests/providers/test_gotify.py)",
    **{
        (name, "allowed_webhook_hosts"): "a filter on webhook_url, whose case sets it"
        for name in ("discord", "google_chat", "mattermost", "slack_webhook", "teams")
    },
    **dict.fromkeys(
        (
            ("brevo", "webhook_username"),
            ("brevo", "webhook_password"),
            ("brevo", "webhook_token"),
            ("mailgun", "webhook_signing_key"),
            ("mailjet", "webhook_username"),
            ("mailjet", "webhook_password"),
            ("postmark", "webhook_username"),
            ("postmark", "webhook_password"),
            ("resend", "webhook_secret"),
            ("sendgrid", "webhook_verification_key"),
        ),
        "verifies the provider's delivery callbacks: a credential, not a place",
    ),
    ("teams_workflows", "allowed_webhook_hosts"): "a filter on webhook_url, whose case sets it",
}


@dataclass(frozen=True)
class Case:
    credentials: dict[str, Any]
    settings: dict[str, Any]
    message: Message


def samples(provider: str) -> Any:
    return importlib.import_module(f"tests.providers.test_{provider}")


def origin(listener: Listener) -> str:
    """The listener's origin; an https one on port 443 (fields that demand it)."""
    return f"https://{listener.host}" if listener.port == 443 else listener.url


def base_url(provider: str) -> Callable[[Listener], Case]:
    def build(listener: Listener) -> Case:
        module = samples(provider)
        settings = {**getattr(module, "SETTINGS", {}), "base_url": origin(listener)}
        return Case(module.CREDENTIALS, settings, module.MESSAGE)

    return build


def chat_webhook(provider: str, hook: str) -> Callable[[Listener], Case]:
    """The provider's own sample hook URL moved to the listener's host (which the tenant may
    add to ``allowed_webhook_hosts``)."""

    def build(listener: Listener) -> Case:
        url = hook.replace(urlsplit(hook).netloc, listener.host, 1)
        settings = {"allowed_webhook_hosts": [listener.host]}
        return Case({"webhook_url": url}, settings, samples(provider).MESSAGE)

    return build


def fcm_token_uri(listener: Listener) -> Case:
    module = samples("fcm")
    credentials = {
        **module.CREDENTIALS,
        "token_uri": f"https://{listener.host}:{listener.port}/token",
    }
    return Case(credentials, {}, module.MESSAGE)


def smtp_host(listener: Listener) -> Case:
    settings = {
        "from_email": "noreply@example.com", "host": listener.host, "port": listener.port,
        "security": "none", "timeout": 5.0,
    }  # fmt: skip
    return Case({}, settings, samples("smtp").MESSAGE)


def fake_http_url(listener: Listener) -> Case:
    return Case({"api_key": "key"}, {"url": f"{listener.url}/send"}, samples("fcm").MESSAGE)


def webhook_url(listener: Listener) -> Case:
    module = samples("webhook")
    return Case(module.CREDENTIALS, {"url": f"{listener.url}/hook"}, module.MESSAGE)


def telegram_base_url(listener: Listener) -> Case:
    module = samples("telegram")
    return Case({"bot_token": module.TOKEN}, {"base_url": origin(listener)}, module.MESSAGE)


CASES: dict[tuple[str, str], Callable[[Listener], Case]] = {
    **{
        (name, "base_url"): base_url(name)
        for name in (
            "brevo",
            "clickatell",
            "gotify",
            "infobip_email",
            "infobip_sms",
            "mailgun",
            "mailersend",
            "mailjet",
            "mailtrap",
            "mandrill",
            "matrix",
            "messagebird",
            "ntfy",
            "plivo",
            "postmark",
            "resend",
            "rocket_chat",
            "sendgrid",
            "ses",
            "slack",
            "sns",
            "sparkpost",
            "telnyx",
            "twilio",
            "twilio_whatsapp",
            "vonage",
            "whatsapp_business",
            "zulip",
        )
    },
    ("telegram", "base_url"): telegram_base_url,
    ("fake_http", "url"): fake_http_url,
    ("webhook", "url"): webhook_url,
    ("fcm", "token_uri"): fcm_token_uri,
    ("smtp", "host"): smtp_host,
    ("mattermost", "webhook_url"): chat_webhook("mattermost", samples("mattermost").URL),
    ("teams", "webhook_url"): chat_webhook("teams", samples("teams").URL),
    ("teams_workflows", "webhook_url"): chat_webhook(
        "teams_workflows", samples("teams_workflows").URL
    ),
}

#: Cases whose field must be an https URL on the default port.
ON_PORT_443 = frozenset(
    {("mattermost", "webhook_url"), ("teams", "webhook_url"), ("slack", "base_url"),
     ("telegram", "base_url"), ("teams_workflows", "webhook_url"), ("zulip", "base_url"),
     ("rocket_chat", "base_url"), ("ntfy", "base_url"), ("gotify", "base_url"),
     ("matrix", "base_url"), ("infobip_email", "base_url"), ("infobip_sms", "base_url")}
)  # fmt: skip


def _is_literal(annotation: Any) -> bool:
    """A field limited to fixed values cannot name a destination of the tenant's choosing."""
    return typing.get_origin(annotation) is typing.Literal


def destination_like_fields() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for name in default_registry.names():
        provider = default_registry.get(name)
        for model in (provider.credentials_model, provider.settings_model):
            for field, info in model.model_fields.items():
                if DESTINATION_LIKE.search(field) and not _is_literal(info.annotation):
                    found.add((name, field))
    return found


def test_every_destination_like_field_is_a_case_or_exempt() -> None:
    fields = destination_like_fields()
    assert fields - CASES.keys() - EXEMPT.keys() == set(), "add a case or an exemption"
    assert CASES.keys() | EXEMPT.keys() <= fields, "a case or exemption names no such field"


def send(name: str, case: Case, allow: tuple[str, ...]) -> Exception | None:
    with guarded_runtime(allow) as runtime:
        provider = runtime.provider(name)
        credentials = provider.parse_credentials(case.credentials)
        settings = provider.parse_settings(case.settings)
        client = runtime.client(http2=type(provider).requires_http2)
        try:
            runtime.run(provider.send(case.message, credentials, settings, client))
        except Exception as exc:
            return exc
    return None


@pytest.mark.parametrize(
    ("name", "field"), [pytest.param(*key, id=".".join(key)) for key in sorted(CASES)]
)
def test_a_destination_field_cannot_reach_a_private_address(name: str, field: str) -> None:
    build = CASES[name, field]
    with listening(port=443 if (name, field) in ON_PORT_443 else 0) as listener:
        case = build(listener)
        refused = send(name, case, allow=())
        assert listener.connections == 0
        assert isinstance(refused, DestinationRefusedError), repr(refused)
        assert f"{listener.host}" in refused.reason

        # The control: allowed, the same field does lead to a connection to the listener.
        send(name, case, allow=(listener.host,))
        assert listener.connections >= 1


def fetch(listener: Listener, *, guard_allows: bool, connector_allows: bool) -> Exception | None:
    """A fetch step's request to the listener, checked by a URL guard and made through the
    guarded runtime's client, each allowing the listener or not."""
    request = FetchRequest("GET", f"{listener.url}/users/ada", (), None, 5.0, 1000, None)
    guard = DestinationGuard((listener.host,) if guard_allows else ())
    with guarded_runtime((listener.host,) if connector_allows else ()) as runtime:
        try:
            runtime.run(perform(request, runtime.client(), guard))
        except Exception as exc:
            return exc
    return None


def test_a_fetch_step_url_cannot_reach_a_private_address() -> None:
    with listening() as listener:
        refused = fetch(listener, guard_allows=False, connector_allows=False)
        assert isinstance(refused, IntegrationError), repr(refused)
        assert refused.reason.startswith(f"refused by the URL guard: host '{listener.host}'")
        assert listener.connections == 0
        # Past the URL check (a name that resolved to a public address when checked), the
        # connector refuses the address it is about to connect to.
        rebound = fetch(listener, guard_allows=True, connector_allows=False)
        assert isinstance(rebound, IntegrationError), repr(rebound)
        assert rebound.reason.startswith("refused by the URL guard when connecting: ")
        assert listener.host in rebound.reason
        assert listener.connections == 0

        # The control: allowed, the fetch does connect to the listener.
        fetch(listener, guard_allows=True, connector_allows=True)
        assert listener.connections >= 1


def post_event(
    listener: Listener, *, guard_allows: bool, connector_allows: bool
) -> Exception | None:
    """An outbound webhook event posted to an endpoint at the listener, checked by a URL guard
    and made through the guarded runtime's client, each allowing the listener or not."""
    job = Job(
        id=uuid.uuid4(), organisation_id=uuid.uuid4(), endpoint_id=uuid.uuid4(),
        url=f"{listener.url}/hooks", enabled=True, secret=SecretStr("s" * 32), body=b"{}",
        event_id=str(uuid.uuid4()), type="message.sent", attempts=0,
    )  # fmt: skip
    guard = DestinationGuard((listener.host,) if guard_allows else ())
    with guarded_runtime((listener.host,) if connector_allows else ()) as runtime:
        try:
            runtime.run(post(job, SecretStr("s" * 32), runtime.client(), guard, 5.0))
        except Exception as exc:
            return exc
    return None


def test_a_webhook_endpoint_url_cannot_reach_a_private_address() -> None:
    with listening() as listener:
        # Refused when the endpoint is created or changed (the guard resolves the host).
        with pytest.raises(EndpointError) as created:
            checked_url(f"{listener.url}/hooks")
        assert created.value.field == "url"
        assert listener.host in created.value.message
        # Refused again when posting, whatever the URL stored.
        refused = post_event(listener, guard_allows=False, connector_allows=False)
        assert isinstance(refused, RefusedDestinationError), repr(refused)
        assert refused.reason.startswith(f"refused by the URL guard: host '{listener.host}'")
        rebound = post_event(listener, guard_allows=True, connector_allows=False)
        assert isinstance(rebound, RefusedDestinationError), repr(rebound)
        assert rebound.reason.startswith("refused by the URL guard when connecting: ")
        assert listener.connections == 0

        # The control: allowed, the post does connect to the listener.
        post_event(listener, guard_allows=True, connector_allows=True)
        assert listener.connections >= 1
