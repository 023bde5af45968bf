"""One module per resource, each with one :class:`fastapi.APIRouter` named ``router``;
:data:`ROUTERS` is what the app mounts, in order."""

from __future__ import annotations

from fastapi import APIRouter

from dispatcher.api.routers import (
    actions,
    credentials,
    events,
    health,
    integrations,
    messages,
    notifications,
    preferences,
    preview,
    subscribers,
    topics,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    events.router,
    subscribers.router,
    preferences.router,
    credentials.router,
    topics.router,
    integrations.router,
    notifications.router,
    messages.router,
    actions.router,
    preview.router,
)
