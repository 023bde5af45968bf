"""Organisations: the tenants. Created by operators (CLI), not by tenant actions."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from dispatcher.runtime.resources import database
from models import Organisation

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _NOT_SLUG.sub("-", name.lower()).strip("-")[:100] or "org"


def create_organisation(name: str, slug: str | None = None) -> uuid.UUID:
    """Create an organisation; the slug defaults to the name's, made unique with a suffix."""
    name = name.strip()
    if not name:
        raise ValueError("name: must not be empty")
    base = slug or slugify(name)
    with database().transaction() as session:
        taken = set(
            session.scalars(select(Organisation.slug).where(Organisation.slug.startswith(base)))
        )
        chosen, counter = base, 1
        while chosen in taken:
            counter += 1
            chosen = f"{base}-{counter}"
        organisation = Organisation(name=name, slug=chosen)
        session.add(organisation)
        session.flush()
        return organisation.id


def list_organisations() -> list[Organisation]:
    with database().session() as session:
        return list(session.scalars(select(Organisation).order_by(Organisation.created_at)))
