"""What a producer passes to ``trigger``: validated before anything is written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from dispatcher.validation import storable
from models.ids import new_hex_id

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
TransactionId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
WorkflowKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class _Storable(BaseModel):
    """Every field must be storable as it is: text without NUL characters or lone surrogates,
    and only JSON (finite numbers) in free-form values; the error names the field."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value, lenient=())


class InlineSubscriber(_Storable):
    """A subscriber given in full: created, or updated with the fields given."""

    model_config = ConfigDict(extra="forbid")

    subscriber_id: ExternalId
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")] | None = None
    first_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None
    channels: dict[str, dict[str, Any]] | None = None
    data: dict[str, Any] | None = None


class TopicTarget(_Storable):
    model_config = ConfigDict(extra="forbid")

    topic: Annotated[str, StringConstraints(min_length=1, max_length=100)]


Target = ExternalId | InlineSubscriber | TopicTarget


class TriggerEvent(_Storable):
    """One event: a workflow for one or more recipients."""

    model_config = ConfigDict(extra="forbid")

    workflow: WorkflowKey
    #: Subscriber ids (the application's own), inline subscribers, or ``{"topic": key}``.
    to: list[Target] = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    transaction_id: TransactionId = Field(default_factory=new_hex_id)
    #: Per channel kind: ``{"email": {"subject": "..."}, "sms": {"body": "..."}}`` replaces the
    #: rendered fields; ``{"email": {"to": {"email": ...}}}`` replaces the address.
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Who caused the event, for templates (``{{ actor.first_name }}``).
    actor: dict[str, Any] | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]
