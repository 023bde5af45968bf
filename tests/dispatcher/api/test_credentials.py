"""The subscriber credentials endpoint for every chat and push provider here: each gets its
subscriber address in the field Novu's SDK carries it in (device tokens, a webhook URL, a chat id
in ``channel``), the wrong kind is a 422 naming the field, and the sending path's recipient, built
by the real worker, carries what was stored."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.novu_providers import novu_id
from dispatcher.api.routers.credentials import ADDRESSED_BY_PHONE, ADDRESSES, TARGETS, Kind
from dispatcher.runtime.resources import database
from dispatcher.sending.plan import recipient
from models import Subscriber
from providers.base import ChannelType, Recipient
from providers.registry import ProviderRegistry
from tests.conftest import free_port
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import act, subscriber, wait_until_terminal, workflow

PATH = "/v1/subscribers/ada/credentials"
#: One address of each kind, as a subscriber would send it.
SAMPLES: dict[Kind, Any] = {
    Kind.TOKENS: ["device-token-1"],
    Kind.WEBHOOK: "https://hooks.example.com/services/T0/B0/secret",
    Kind.CHAT_ID: "C0123ABC",
}
#: The recipient field each kind lands in.
RECIPIENT_FIELD = {
    Kind.TOKENS: "device_tokens",
    Kind.WEBHOOK: "webhook_url",
    Kind.CHAT_ID: "chat_id",
}


def stored(organisation_id: uuid.UUID) -> Subscriber:
    with database().session() as session:
        return session.scalars(
            select(Subscriber).where(
                Subscriber.organisation_id == organisation_id, Subscriber.external_id == "ada"
            )
        ).one()


def recipient_of(organisation_id: uuid.UUID) -> Recipient:
    """The recipient the sending path builds from the stored subscriber."""
    return recipient(stored(organisation_id), {})


def put(client: TestClient, keyed: Keyed, provider_id: str, **credentials: Any) -> Any:
    return client.put(
        PATH, headers=keyed.headers, json={"providerId": provider_id, "credentials": credentials}
    )


#: (provider id as Novu's SDK sends it, the credentials, the channel, the stored address, a
#: field of the wrong kind for it)
NEW_PROVIDERS = [
    ("zulip", {"channel": "ops>deploys"}, "chat",
     {"provider": "zulip", "chat_id": "ops>deploys"}, "webhookUrl"),
    ("rocket-chat", {"channel": "#general"}, "chat",
     {"provider": "rocket_chat", "chat_id": "#general"}, "webhookUrl"),
    ("line", {"channel": "U" + "a" * 32}, "chat",
     {"provider": "line", "chat_id": "U" + "a" * 32}, "deviceTokens"),
    ("matrix", {"channel": "!room:example.org"}, "chat",
     {"provider": "matrix", "chat_id": "!room:example.org"}, "webhookUrl"),
    ("telegram", {"channel": "123456789"}, "chat",
     {"provider": "telegram", "chat_id": "123456789"}, "webhookUrl"),
    ("slack", {"channel": "C0123ABC"}, "chat",
     {"provider": "slack", "chat_id": "C0123ABC"}, "deviceTokens"),
    ("gotify", {"webhookUrl": "https://push.example.com/message?token=Axyz"}, "chat",
     {"provider": "gotify", "webhook_url": "https://push.example.com/message?token=Axyz"},
     "channel"),
    ("teams-workflows",
     {"webhookUrl": "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=s"},
     "chat",
     {"provider": "teams_workflows",
      "webhook_url": "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=s"},
     "channel"),
    ("pushover", {"deviceTokens": ["uQiRzpo4DXghDmr9QzzfQu27cmVRsG"]}, "push",
     {"provider": "pushover", "device_tokens": ["uQiRzpo4DXghDmr9QzzfQu27cmVRsG"]}, "webhookUrl"),
    ("ntfy", {"deviceTokens": ["ada-alerts"]}, "push",
     {"provider": "ntfy", "device_tokens": ["ada-alerts"]}, "channel"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("provider_id", "credentials", "channel", "address", "wrong"),
    NEW_PROVIDERS,
    ids=[case[0] for case in NEW_PROVIDERS],
)
def test_each_provider_gets_its_subscriber_address_and_the_recipient_carries_it(
    client: TestClient,
    keyed: Keyed,
    provider_id: str,
    credentials: dict[str, Any],
    channel: str,
    address: dict[str, Any],
    wrong: str,
) -> None:
    subscriber(keyed.organisation_id, "ada")
    answer = put(client, keyed, provider_id, **credentials)
    assert answer.status_code == 200, answer.text
    assert stored(keyed.organisation_id).channels[channel] == address
    to = recipient_of(keyed.organisation_id)
    assert to.chat_id == address.get("chat_id")
    assert to.webhook_url == address.get("webhook_url")
    assert to.device_tokens == tuple(address.get("device_tokens", ()))

    kind = Kind(wrong)
    refused = put(client, keyed, provider_id, **{**credentials, wrong: SAMPLES[kind]})
    assert refused.status_code == 422
    assert list(refused.json()["errors"]) == [f"credentials.{wrong}"]
    assert provider_id in refused.json()["errors"][f"credentials.{wrong}"]["messages"][0]
    assert stored(keyed.organisation_id).channels[channel] == address
    assert client.delete(f"{PATH}/{provider_id}", headers=keyed.headers).status_code == 204
    assert channel not in stored(keyed.organisation_id).channels


def test_every_chat_and_push_provider_of_the_registry_takes_its_kind_only(
    client: TestClient, keyed: Keyed
) -> None:
    subscriber(keyed.organisation_id, "ada")
    registry = ProviderRegistry(load_entry_points=False)
    addressed = [
        cls.name
        for channel in (ChannelType.CHAT, ChannelType.PUSH)
        for cls in registry.for_channel(channel)
    ]
    assert len(addressed) >= 19
    assert sorted(set(addressed) - ADDRESSED_BY_PHONE) == sorted(ADDRESSES)
    for name in ADDRESSED_BY_PHONE:
        refused = put(client, keyed, name, channel="x")
        assert refused.status_code == 422
        assert "phone" in refused.json()["errors"]["providerId"]["messages"][0]
    addressed = [name for name in addressed if name not in ADDRESSED_BY_PHONE]
    for name in addressed:
        for provider_id in {name, novu_id(name)}:
            # Novu's ``slack`` also takes a webhook URL, for ``slack_webhook``.
            taken = TARGETS[provider_id].fields
            assert {kind: taken[kind] for kind in ADDRESSES[name]} == dict.fromkeys(
                ADDRESSES[name], name
            )
            for kind, sample in SAMPLES.items():
                answer = put(client, keyed, provider_id, **{kind.value: sample})
                if kind in taken:
                    assert answer.status_code == 200, (provider_id, kind, answer.text)
                    row = stored(keyed.organisation_id)
                    channel = "push" if kind is Kind.TOKENS else "chat"
                    assert row.channels[channel]["provider"] == taken[kind]
                    got = getattr(recipient(row, {}), RECIPIENT_FIELD[kind])
                    assert got == (tuple(sample) if kind is Kind.TOKENS else sample), provider_id
                else:
                    assert answer.status_code == 422, (provider_id, kind)
                    assert list(answer.json()["errors"]) == [f"credentials.{kind.value}"]
            missing = put(client, keyed, provider_id)
            assert missing.status_code == 422, provider_id
            assert next(iter(missing.json()["errors"])).startswith("credentials.")


def test_novus_slack_id_takes_the_webhook_or_the_bots_channel_and_delete_clears_either(
    client: TestClient, keyed: Keyed
) -> None:
    subscriber(keyed.organisation_id, "ada")
    url = SAMPLES[Kind.WEBHOOK]
    assert put(client, keyed, "slack", webhookUrl=url).status_code == 200
    assert stored(keyed.organisation_id).channels["chat"] == {
        "provider": "slack_webhook",
        "webhook_url": url,
    }
    assert client.delete(f"{PATH}/slack", headers=keyed.headers).status_code == 204
    assert "chat" not in stored(keyed.organisation_id).channels
    both = put(client, keyed, "slack", webhookUrl=url, channel="C0123ABC")
    assert both.status_code == 200
    assert stored(keyed.organisation_id).channels["chat"] == {
        "provider": "slack", "webhook_url": url, "chat_id": "C0123ABC",
    }  # fmt: skip
    assert client.delete(f"{PATH}/matrix", headers=keyed.headers).status_code == 204
    assert "chat" in stored(keyed.organisation_id).channels
    no_url = put(client, keyed, "slack", webhookUrl="ftp://x")
    assert list(no_url.json()["errors"]) == ["credentials.webhookUrl"]
    # Novu ids of providers this project does not have keep Novu's meaning.
    assert put(client, keyed, "ryver", webhookUrl=url).status_code == 200
    assert put(client, keyed, "pushpad", deviceTokens=["t"]).status_code == 200
    assert stored(keyed.organisation_id).channels["push"]["provider"] == "pushpad"
    for refused in ("sendgrid", "webhook", "fake", "nonsense"):
        answer = put(client, keyed, refused, deviceTokens=["t"])
        assert list(answer.json()["errors"]) == ["providerId"], refused


class Recorder(BaseHTTPRequestHandler):
    """A provider's endpoint that keeps each JSON body it is sent and answers a message id."""

    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        answer = json.dumps({"id": f"m{len(type(self).bodies)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", bodies
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("worker")
def test_a_trigger_through_the_worker_reaches_the_provider_with_the_stored_addresses(
    client: TestClient, keyed: Keyed, recorder: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = recorder
    for channel in ("chat", "push"):
        act(
            keyed.organisation_id,
            "create_integration",
            {"name": channel, "provider": "fake_http", "channel_type": channel,
             "credentials": {"api_key": "k"}, "settings": {"url": f"{url}/{channel}"},
             "is_primary": True},
        )  # fmt: skip
    template = {"title": "Deploy", "body": "Deploy {{ payload.n }} done"}
    workflow(
        keyed.organisation_id,
        "deploys",
        [{"kind": "chat", "template": template}, {"kind": "push", "template": template}],
    )
    subscriber(keyed.organisation_id, "ada")
    assert put(client, keyed, "matrix", channel="!room:example.org").status_code == 200
    assert put(client, keyed, "ntfy", deviceTokens=["ada-alerts"]).status_code == 200
    trigger = client.post(
        "/v1/events/trigger",
        headers=keyed.headers,
        json={"name": "deploys", "to": "ada", "payload": {"n": 7}, "transactionId": "d7"},
    )
    assert trigger.status_code == 201, trigger.text
    views = wait_until_terminal(keyed.organisation_id, "d7")
    assert sorted(view.status for view in views) == ["sent", "sent"], views
    sent = {body["channel"]: body["to"] for body in bodies}
    assert sent["chat"]["chat_id"] == "!room:example.org"
    assert sent["push"]["device_tokens"] == ["ada-alerts"]
    assert "webhook_url" not in sent["chat"]
