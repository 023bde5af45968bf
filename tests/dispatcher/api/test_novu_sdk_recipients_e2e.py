"""Novu's own Python SDK against a real ``dispatcher api`` process: subscribers, their
credentials and preferences, topics and their subscriptions, and a trigger to a topic sent by
the session's real worker through the local fake provider."""

from __future__ import annotations

import uuid

import pytest
from novu_py import Novu, models
from sqlalchemy import select

from dispatcher.dev.fakeserver import FakeProviderServer
from dispatcher.runtime.resources import database
from models import (
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    Subscriber,
)
from tests.dispatcher.notify_support import EMAIL_STEP, wait_until_terminal, wire, workflow

pytestmark = pytest.mark.usefixtures("worker")


def test_the_sdk_manages_subscribers_credentials_and_preferences(
    novu: Novu, organisation_id: uuid.UUID
) -> None:
    created = novu.subscribers.create(
        create_subscriber_request_dto=models.CreateSubscriberRequestDto(
            subscriber_id="ada", first_name="Ada", email="ada@example.com"
        )
    )
    assert created.result.subscriber_id == "ada" and created.result.deleted is False
    assert created.result.organization_id == str(organisation_id)
    novu.subscribers.create(
        create_subscriber_request_dto=models.CreateSubscriberRequestDto(subscriber_id="bo")
    )
    found = novu.subscribers.search(
        request=models.SubscribersControllerSearchSubscribersRequest(email="ada@")
    )
    assert [s.subscriber_id for s in found.result.data] == ["ada"]
    first = novu.subscribers.search(
        request=models.SubscribersControllerSearchSubscribersRequest(limit=1)
    )
    assert first.result.total_count == 2 and first.result.next
    second = novu.subscribers.search(
        request=models.SubscribersControllerSearchSubscribersRequest(
            limit=1, after=first.result.next
        )
    )
    assert {first.result.data[0].subscriber_id, second.result.data[0].subscriber_id} == {
        "ada", "bo",
    }  # fmt: skip
    patched = novu.subscribers.patch(
        subscriber_id="ada",
        patch_subscriber_request_dto=models.PatchSubscriberRequestDto(last_name="Lovelace"),
    )
    assert (patched.result.first_name, patched.result.last_name) == ("Ada", "Lovelace")
    assert novu.subscribers.retrieve(subscriber_id="ada").result.last_name == "Lovelace"

    novu.subscribers.credentials.update(
        subscriber_id="ada",
        update_subscriber_channel_request_dto=models.UpdateSubscriberChannelRequestDto(
            provider_id=models.ChatOrPushProviderEnum.FCM,
            credentials=models.ChannelCredentials(device_tokens=["t1"]),
        ),
    )
    novu.subscribers.credentials.append(
        subscriber_id="ada",
        update_subscriber_channel_request_dto=models.UpdateSubscriberChannelRequestDto(
            provider_id=models.ChatOrPushProviderEnum.FCM,
            credentials=models.ChannelCredentials(device_tokens=["t2"]),
        ),
    )
    with database().session() as session:
        ada = session.query(Subscriber).filter_by(
            organisation_id=organisation_id, external_id="ada"
        ).one()  # fmt: skip
        assert ada.channels["push"]["device_tokens"] == ["t1", "t2"]
    novu.subscribers.credentials.delete(subscriber_id="ada", provider_id="fcm")

    workflow(organisation_id, "news", [EMAIL_STEP])
    listed = novu.subscribers.preferences.list(subscriber_id="ada")
    assert listed.result.global_.enabled
    assert [w.workflow.identifier for w in listed.result.workflows] == ["news"]
    updated = novu.subscribers.preferences.update(
        subscriber_id="ada",
        patch_subscriber_preferences_dto=models.PatchSubscriberPreferencesDto(
            workflow_id="news", channels=models.PatchPreferenceChannelsDto(email=False)
        ),
    )
    assert updated.result.workflows[0].channels.email is False

    removed = novu.subscribers.delete(subscriber_id="bo")
    assert removed.result.acknowledged and removed.result.status == "deleted"
    with pytest.raises(models.ErrorDto) as missing:
        novu.subscribers.retrieve(subscriber_id="bo")
    assert missing.value.data.status_code == 404


def test_the_sdk_fans_a_trigger_out_to_a_topic(
    novu: Novu, organisation_id: uuid.UUID, fake_provider: FakeProviderServer
) -> None:
    wiring = wire(fake_provider, organisation_id)
    workflow(organisation_id, "code", [EMAIL_STEP])
    for name in ("ada", "bo", "cy"):
        novu.subscribers.create(
            create_subscriber_request_dto=models.CreateSubscriberRequestDto(
                subscriber_id=name, email=f"{name}@example.com", first_name=name.title()
            )
        )
    topic = novu.topics.create(
        create_update_topic_request_dto=models.CreateUpdateTopicRequestDto(key="team", name="Team")
    )
    assert topic.result.key == "team"
    assert [t.key for t in novu.topics.list().result.data] == ["team"]
    assert novu.topics.get(topic_key="team").result.name == "Team"
    added = novu.topics.subscriptions.create(
        topic_key="team",
        create_topic_subscriptions_request_dto=models.CreateTopicSubscriptionsRequestDto(
            subscriber_ids=["ada", "bo", "cy", "zed"]
        ),
    )
    assert (added.result.meta.successful, added.result.meta.failed) == (3, 1)
    removed = novu.topics.subscriptions.delete(
        topic_key="team",
        delete_topic_subscriptions_request_dto=models.DeleteTopicSubscriptionsRequestDto(
            subscriber_ids=["cy"]
        ),
    )
    assert removed.result.meta.successful == 1
    members = novu.topics.subscriptions.list(
        request=models.TopicsControllerListTopicSubscriptionsRequest(topic_key="team")
    )
    assert sorted(s.subscriber.subscriber_id for s in members.result.data) == ["ada", "bo"]
    answer = novu.trigger(
        trigger_event_request_dto=models.TriggerEventRequestDto(
            workflow_id="code",
            to=models.TopicPayloadDto(
                topic_key="team", type=models.TriggerRecipientsTypeEnum.TOPIC
            ),
            payload={"code": "42"},
        )
    )
    views = wait_until_terminal(organisation_id, answer.result.transaction_id or "")
    assert sorted((v.subscriber, v.status) for v in views) == [("ada", "sent"), ("bo", "sent")]
    assert fake_provider.state.stats()["by_path"][wiring.paths["primary"]] == 2
    assert novu.topics.delete(topic_key="team").result.acknowledged
    ada_row = novu.subscribers.retrieve(subscriber_id="ada").result.id
    assert novu.subscribers.delete(subscriber_id="ada").result.acknowledged
    with database().session() as session:
        kept = session.execute(
            select(Delivery, DeliveryAttempt)
            .join(Notification, Notification.id == Delivery.notification_id)
            .join(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
            .where(Notification.subscriber_id == uuid.UUID(ada_row or ""))
        ).all()
        assert [(d.status, d.content, a.outcome) for d, a in kept] == [
            (DeliveryStatus.SENT, {}, AttemptOutcome.SENT)
        ]
        recorded = [str(vars(row)) for pair in kept for row in pair]
    assert not any("ada@example.com" in text for text in recorded)


def test_the_sdk_sets_chat_ids_and_refuses_the_wrong_kind_by_field(
    novu: Novu, organisation_id: uuid.UUID
) -> None:
    novu.subscribers.create(
        create_subscriber_request_dto=models.CreateSubscriberRequestDto(subscriber_id="ada")
    )
    sent = {
        models.ChatOrPushProviderEnum.ZULIP: ("ops>deploys", "zulip"),
        models.ChatOrPushProviderEnum.ROCKET_CHAT: ("#general", "rocket_chat"),
        models.ChatOrPushProviderEnum.LINE: ("U" + "b" * 32, "line"),
        models.ChatOrPushProviderEnum.TELEGRAM: ("123456789", "telegram"),
        models.ChatOrPushProviderEnum.SLACK: ("C0123ABC", "slack"),
    }
    for provider_id, (chat_id, ours) in sent.items():
        novu.subscribers.credentials.update(
            subscriber_id="ada",
            update_subscriber_channel_request_dto=models.UpdateSubscriberChannelRequestDto(
                provider_id=provider_id, credentials=models.ChannelCredentials(channel=chat_id)
            ),
        )
        with database().session() as session:
            ada = session.query(Subscriber).filter_by(
                organisation_id=organisation_id, external_id="ada"
            ).one()  # fmt: skip
            assert ada.channels["chat"] == {"provider": ours, "chat_id": chat_id}
    with pytest.raises(models.ValidationErrorDto) as refused:
        novu.subscribers.credentials.update(
            subscriber_id="ada",
            update_subscriber_channel_request_dto=models.UpdateSubscriberChannelRequestDto(
                provider_id=models.ChatOrPushProviderEnum.ZULIP,
                credentials=models.ChannelCredentials(webhook_url="https://x.example.com/hook"),
            ),
        )
    assert refused.value.data.status_code == 422
    assert list(refused.value.data.errors) == ["credentials.webhookUrl"]
