"""The ``on_ambiguous`` integration setting: resend, or record ``unknown``, when a provider gave
no answer after the request may have reached it.

An integration's ``settings`` hold its provider's settings and, beside them, ``on_ambiguous``:

* ``resend`` (at least once, the default): retried like any transient failure, then the next
  integration; the recipient may get the message twice;
* ``record_unknown`` (at most once, for messages that cost per send such as SMS): the delivery
  is recorded ``unknown`` and neither resent nor sent through another integration.

Without it the channel's default applies (``DISPATCHER_ON_AMBIGUOUS_BY_CHANNEL``, resend for
every channel unless set). The provider never sees the setting: :func:`split_settings` takes it
out before the provider's settings model validates the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from models import ChannelType, OnAmbiguous


class DeliverySettings(BaseModel):
    """The integration settings the dispatcher reads itself."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    on_ambiguous: OnAmbiguous | None = None


DELIVERY_SETTING_NAMES = frozenset(DeliverySettings.model_fields)


def split_settings(raw: Mapping[str, Any]) -> tuple[DeliverySettings, dict[str, Any]]:
    """The dispatcher's settings (validated: a ``ValidationError`` names the field) and the
    provider's (not validated here)."""
    delivery = DeliverySettings.model_validate(
        {key: value for key, value in raw.items() if key in DELIVERY_SETTING_NAMES}
    )
    return delivery, {key: value for key, value in raw.items() if key not in DELIVERY_SETTING_NAMES}


def on_ambiguous(
    settings: DeliverySettings,
    channel: ChannelType,
    channel_defaults: Mapping[ChannelType, OnAmbiguous],
) -> OnAmbiguous:
    """The integration's choice, else its channel's default, else resend."""
    return settings.on_ambiguous or channel_defaults.get(channel, OnAmbiguous.RESEND)
