"""One module per resource, each with one :class:`fastapi.APIRouter` named ``router``;
:data:`ROUTERS` is what the app mounts, in order."""

from __future__ import annotations

from fastapi import APIRouter

from dispatcher.api.routers import (
    actions,
    callbacks,
    credentials,
    events,
    health,
    inbox,
    integrations,
    messages,
    notifications,
    preferences,
    preview,
    subscribers,
    suppressions,
    topics,
    webhooks,
    workflows,
)

ROUTERS: tuple[APIRouter, ...] = (
    # The busiest first: a request is matched against the routers in this order.
    events.router,
    callbacks.router,
    health.router,
    subscribers.router,
    preferences.router,
    credentials.router,
    topics.router,
    workflows.router,
    integrations.router,
    notifications.router,
    messages.router,
    actions.router,
    suppressions.router,
    webhooks.router,
    inbox.router,
    preview.router,
)
