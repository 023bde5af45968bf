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
    }
