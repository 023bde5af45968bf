"""The action catalogue: importing this package registers every action."""

from dispatcher.actions import (
    agents,
    integrations,
    learning,
    recipients,
    sharing,
    tenancy,
    workflows,
)
from dispatcher.actions.base import ActionSpec, catalogue

__all__ = [
    "ActionSpec",
    "agents",
    "catalogue",
    "integrations",
    "learning",
    "recipients",
    "sharing",
    "tenancy",
    "workflows",
]
