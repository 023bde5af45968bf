"""Digest steps: which open digest an event joins, and when a digest is released.

A digest collects the events of one subscriber **and one key** at one workflow. The key is the
step's ``config.key``, a template rendered in the sandbox from ``payload``, ``subscriber`` and
``actor`` when the trigger is written; events of a subscriber whose keys differ are collected
into different digests. A step without a key, a key that renders empty, and a key that fails to
render all mean *no key*: the event joins the subscriber's digest without one (a failure is
logged and kept in the notification's ``meta.digest_key_error``), so a bad key never loses an
event. The rendered key is stored on the notification (``digest_key``, at most
:data:`MAX_KEY_LENGTH` characters: a longer key keeps its first characters and ends in ``~``
and the SHA-256 of the whole key, so two long keys still differ).

A digest is released ``config.window_seconds`` after its first event reached the step, or, with
``config.cron``, at the cron expression's next time after that, read as wall-clock time in
``config.timezone`` or else the subscriber's time zone (UTC when the subscriber has none or an
unknown one), as :mod:`dispatcher.notifications.cron` reads it across clock changes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.notifications.cron import next_fire_time, parse_timezone
from dispatcher.sending.plan import SUBSCRIBER_COLUMNS, subscriber_context
from dispatcher.sending.rendering import RenderError, TemplateRenderer, compile_template
from models import Subscriber, WorkflowStep
from models.bulk import among

logger = logging.getLogger(__name__)

#: The longest stored key (``notifications.digest_key``) and the longest key template.
MAX_KEY_LENGTH = 256
MAX_KEY_TEMPLATE_LENGTH = 1000
#: What a key longer than :data:`MAX_KEY_LENGTH` keeps of itself before ``~`` and its hash.
_KEPT = MAX_KEY_LENGTH - 1 - 64
#: Subscribers read per query.
_CHUNK = 1000
UTC_ZONE = zoneinfo.ZoneInfo("UTC")

_renderers = threading.local()


def _renderer() -> TemplateRenderer:
    renderer: TemplateRenderer | None = getattr(_renderers, "renderer", None)
    if renderer is None:
        renderer = _renderers.renderer = TemplateRenderer()
    return renderer


@functools.lru_cache(maxsize=256)
def _names_used(source: str) -> frozenset[str]:
    """The top-level names a key template reads (``payload``, ``subscriber``, ``actor``)."""
    environment = SandboxedEnvironment()
    return frozenset(meta.find_undeclared_variables(compile_template(environment, source)))


def bounded_key(key: str) -> str:
    """``key`` cut to :data:`MAX_KEY_LENGTH` characters without making two keys one."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:_KEPT]}~{hashlib.sha256(key.encode()).hexdigest()}"


def render_key(source: str, context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The key ``source`` renders to from ``context`` (``None`` for none) and, when it does not
    render, why."""
    try:
        text = _renderer().render(source, context).strip()
    except RenderError as exc:
        return None, str(exc)[:200]
    return (bounded_key(text) if text else None), None


def digest_zone(config: Mapping[str, Any], subscriber_timezone: str | None) -> zoneinfo.ZoneInfo:
    """The time zone a digest's cron is read in: the step's, else the subscriber's, else UTC."""
    for name in (config.get("timezone"), subscriber_timezone):
        if name:
            try:
                return parse_timezone(name)
            except ValueError:
                # The step's was checked when stored (only a zone dropped from the system's data
                # gets here); subscribers' time zones are not checked when stored.
                continue
    return UTC_ZONE


def release_time(
    config: Mapping[str, Any], subscriber_timezone: str | None, reached: datetime
) -> datetime:
    """When a digest whose first event reached the step at ``reached`` is released (UTC)."""
    cron = config.get("cron")
    if cron is None:
        return reached + timedelta(seconds=float(config["window_seconds"]))
    return next_fire_time(str(cron), digest_zone(config, subscriber_timezone), reached)


@dataclass
class Grouping:
    """Per subscriber of one trigger: the digest key (absent: none), the time zone a cron
    digest is read in, and why the key did not render (absent: it did, or there is none)."""

    keys: dict[uuid.UUID, str] = field(default_factory=dict)
    timezones: dict[uuid.UUID, str | None] = field(default_factory=dict)
    problems: dict[uuid.UUID, str] = field(default_factory=dict)


def group(  # noqa: PLR0917 - the trigger's parts, as the writer holds them
    session: Session,
    organisation: uuid.UUID,
    step: WorkflowStep,
    payload: Mapping[str, Any],
    actor: Any,
    subscribers: Sequence[uuid.UUID],
) -> Grouping:
    """The digest keys and time zones of one trigger's subscribers at digest ``step``.

    Subscribers are read only when needed: the key reads ``subscriber``, or a cron digest
    without its own time zone is read in each subscriber's. A key that reads only ``payload``
    and ``actor`` is rendered once for all of them."""
    config = step.config
    source = config.get("key") or None
    uses_subscriber = source is not None and "subscriber" in _names_used(source)
    needs_zone = config.get("cron") is not None and not config.get("timezone")
    profiles = (
        _profiles(session, organisation, subscribers) if uses_subscriber or needs_zone else {}
    )
    grouping = Grouping()
    if needs_zone:
        grouping.timezones = {
            subscriber: profile["timezone"] for subscriber, profile in profiles.items()
        }
    if source is None:
        return grouping
    base = {"payload": payload, "actor": actor or {}}
    shared = None if uses_subscriber else render_key(source, base)
    for subscriber in subscribers:
        key, problem = (
            shared
            if shared is not None
            else render_key(source, {**base, "subscriber": profiles.get(subscriber, {})})
        )
        if key is not None:
            grouping.keys[subscriber] = key
        if problem is not None:
            grouping.problems[subscriber] = problem
    if grouping.problems:
        logger.warning(
            "digest step %s: the key does not render for %d subscriber(s) (%s); their events "
            "join their digests without a key",
            step.id, len(grouping.problems), next(iter(grouping.problems.values())),
        )  # fmt: skip
    return grouping


def _profiles(
    session: Session, organisation: uuid.UUID, subscribers: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(subscribers), _CHUNK):
        rows = session.execute(
            select(*SUBSCRIBER_COLUMNS).where(
                Subscriber.organisation_id == organisation,
                among(session, Subscriber.id, subscribers[start : start + _CHUNK]),
            )
        )
        found.update((row.id, subscriber_context(row)) for row in rows)
    return found
