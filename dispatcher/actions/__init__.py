"""The action catalogue: importing this package registers every action."""

from dispatcher.actions import (
    agents,
    inbox,
    integrations,
    layouts,
    learning,
    recipients,
    schedules,
    sharing,
    tenancy,
    tools,
    workflows,
)
from dispatcher.actions.base import ActionSpec, catalogue

__all__ = [
    "ActionSpec",
    "agents",
    "catalogue",
    "inbox",
    "integrations",
    "layouts",
    "learning",
    "recipients",
    "schedules",
    "sharing",
    "tenancy",
    "tools",
    "workflows",
]
