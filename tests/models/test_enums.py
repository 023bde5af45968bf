"""The layers' enums name the same things: a channel added to one layer is added to all."""

from __future__ import annotations

import models
import providers.base


def test_models_and_providers_name_the_same_channels() -> None:
    assert {(c.name, c.value) for c in models.ChannelType} == {
        (c.name, c.value) for c in providers.base.ChannelType
    }


def test_every_channel_is_a_step_kind() -> None:
    kinds = {kind.value for kind in models.StepKind}
    assert {channel.value for channel in models.ChannelType} <= kinds
    assert kinds - {channel.value for channel in models.ChannelType} == {
        "delay",
        "digest",
        "throttle",
        "fetch",
    }


def test_reported_statuses_are_the_callback_kinds() -> None:
    from providers.callbacks import DeliveryEventKind

    assert {(s.name, s.value) for s in models.ReportedStatus} == {
        (k.name, k.value) for k in DeliveryEventKind
    }
    assert set(models.REPORTED_RANK) == set(models.ReportedStatus)


def test_addresses_are_normalized_per_channel() -> None:
    email, sms = models.ChannelType.EMAIL, models.ChannelType.SMS
    assert models.normalize_address(email, " Ada@Example.COM ") == "ada@example.com"
    assert models.normalize_address(sms, "+44 (20) 7946-0018") == "+442079460018"
    assert models.normalize_address(sms, "0044 20 7946 0018") == "+442079460018"
    assert models.normalize_address(sms, "+442079460018") == "+442079460018"
