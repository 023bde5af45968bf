"""The ONE agent entities: agents, their tools and prompts, threads and messages."""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Mutable, Row, Tenant, enum_column
from models.types import JSONType


class AgentKind(enum.StrEnum):
    SYSTEM_AGENT = "system_agent"
    USER_AGENT = "user_agent"


class MessageKind(enum.StrEnum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class Prompt(Row, Mutable, Tenant, Base):
    __tablename__ = "prompts"

    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Tool(Row, Mutable, Tenant, Base):
    """A capability an agent may invoke, optionally bound to an integration (sendEmail, ...)."""

    __tablename__ = "tools"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    integration_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    action: Mapped[str | None] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Agent(Row, Mutable, Tenant, Base):
    """Related ids (delegates, tools, prompts) are id lists, as in the original data model."""

    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[AgentKind] = mapped_column(enum_column(AgentKind, "agent_kind"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    prompt: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    model: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    delegates_to: Mapped[list[Any]] = mapped_column(default=list)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    attached_prompts: Mapped[list[Any]] = mapped_column(default=list)


class AgentThread(Row, Mutable, Tenant, Base):
    __tablename__ = "agent_threads"

    title: Mapped[str | None] = mapped_column(String(500))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class AgentMessage(Row, Tenant, Base):
    __tablename__ = "agent_messages"

    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agent_threads.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[MessageKind] = mapped_column(enum_column(MessageKind, "message_kind"))
    content: Mapped[str] = mapped_column(Text)
    tool_call: Mapped[Any] = mapped_column(JSONType, nullable=True)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
