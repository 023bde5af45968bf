"""The data: SQLAlchemy tables, the credential key ring, and Alembic migrations."""

from models.actions import ActionRun
from models.agents import Agent, AgentKind, AgentMessage, AgentThread, MessageKind, Prompt, Tool
from models.api_keys import ApiKey
from models.base import Base
from models.crypto import KeyRing, KeyRingError, credential_keys, generate_key
from models.delivery import (
    TERMINAL_DELIVERY_STATUSES,
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    InboxMessage,
    Notification,
    NotificationStatus,
    OnAmbiguous,
)
from models.inbox import InboxSettings
from models.integrations import (
    Channel,
    ChannelType,
    Grant,
    GranteeType,
    Integration,
    IntegrationStatus,
    ResourceType,
)
from models.layouts import EmailLayout
from models.learning import Course, Flow, FlowProgress, Lesson, ProgressStatus
from models.lifecycle import (
    REPORTED_RANK,
    DeliveryEventRecord,
    ReportedStatus,
    Suppression,
    normalize_address,
)
from models.recipients import Preference, Subscriber, Topic, TopicSubscription
from models.routing import DeliveryWatch, WatchState
from models.schedules import Schedule
from models.tenancy import Group, Membership, Organisation, User
from models.throttles import ThrottleWindow
from models.webhooks import (
    TERMINAL_WEBHOOK_EVENT_STATUSES,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventAttempt,
    WebhookEventStatus,
    WebhookEventType,
)
from models.workflows import StepKind, Workflow, WorkflowStep

__all__ = [
    "REPORTED_RANK",
    "TERMINAL_DELIVERY_STATUSES",
    "TERMINAL_WEBHOOK_EVENT_STATUSES",
    "ActionRun",
    "Agent",
    "AgentKind",
    "AgentMessage",
    "AgentThread",
    "ApiKey",
    "AttemptOutcome",
    "Base",
    "Channel",
    "ChannelType",
    "Course",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryEventRecord",
    "DeliveryStatus",
    "DeliveryWatch",
    "EmailLayout",
    "Flow",
    "FlowProgress",
    "Grant",
    "GranteeType",
    "Group",
    "InboxMessage",
    "InboxSettings",
    "Integration",
    "IntegrationStatus",
    "KeyRing",
    "KeyRingError",
    "Lesson",
    "Membership",
    "MessageKind",
    "Notification",
    "NotificationStatus",
    "OnAmbiguous",
    "Organisation",
    "Preference",
    "ProgressStatus",
    "Prompt",
    "ReportedStatus",
    "ResourceType",
    "Schedule",
    "StepKind",
    "Subscriber",
    "Suppression",
    "ThrottleWindow",
    "Tool",
    "Topic",
    "TopicSubscription",
    "User",
    "WatchState",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventAttempt",
    "WebhookEventStatus",
    "WebhookEventType",
    "Workflow",
    "WorkflowStep",
    "credential_keys",
    "generate_key",
    "normalize_address",
]
