"""Suppressed addresses: read and lifted by the organisation (HTTP API, CLI).

Suppressions are written by :mod:`~dispatcher.lifecycle.apply` (hard bounces, complaints,
invalid numbers) and read by the sending path (``dispatcher.sending.plan``); lifting one is
deleting its row, so the next delivery to the address is sent again. Every function here takes
the organisation and touches only its rows.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, select

from dispatcher.runtime.resources import database
from models import ChannelType, Suppression, normalize_address


def filtered(
    organisation_id: uuid.UUID, *, channel: ChannelType | None = None, address: str | None = None
) -> Select[Any]:
    """The organisation's suppressions, by channel and by address (normalized as stored: an
    email address matches in any case; without a channel, as an email address and as a phone
    number)."""
    query = select(Suppression).where(Suppression.organisation_id == organisation_id)
    if channel is not None:
        query = query.where(Suppression.channel_type == channel)
    if address:
        channels = [channel] if channel else [ChannelType.EMAIL, ChannelType.SMS]
        query = query.where(
            Suppression.address.in_({normalize_address(c, address) for c in channels})
        )
    return query


def list_suppressions(
    organisation_id: uuid.UUID,
    *,
    channel: ChannelType | None = None,
    address: str | None = None,
    limit: int = 100,
) -> list[Suppression]:
    """Newest first (the CLI's listing; the API pages by cursor)."""
    query = filtered(organisation_id, channel=channel, address=address)
    with database().session() as session:
        rows = list(
            session.scalars(
                query.order_by(Suppression.created_at.desc(), Suppression.id.desc()).limit(limit)
            )
        )
        session.expunge_all()
    return rows


def lift(organisation_id: uuid.UUID, suppression_id: uuid.UUID) -> bool:
    """Delete the suppression; False when the organisation has none of that id."""
    with database().transaction() as session:
        result = session.execute(
            delete(Suppression)
            .where(Suppression.id == suppression_id, Suppression.organisation_id == organisation_id)
            .returning(Suppression.id)
        )
        return result.first() is not None
