"""Agent actions: agents, their tools and prompts, threads and messages."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.results import Ok, Result
from dispatcher.validation import LongText, Name, Name100, Url
from models import (
    Agent,
    AgentKind,
    AgentMessage,
    AgentThread,
    Integration,
    MessageKind,
    Prompt,
    Tool,
    User,
)
from models.types import utcnow


class CreateAgentArgs(ActionArgs):
    name: Name
    description: LongText
    kind: Literal["system_agent", "user_agent"]
    created_by: Annotated[uuid.UUID | None, Ref(User)] = None
    prompt: LongText | None = None
    avatar_url: Url | None = None
    delegates_to: Annotated[list[uuid.UUID], Ref(Agent)] = Field(default_factory=list)
    tools: Annotated[list[uuid.UUID], Ref(Tool)] = Field(default_factory=list)
    tags: list[Name] = Field(default_factory=list)
    model: Name | None = None
    attached_prompts: Annotated[list[uuid.UUID], Ref(Prompt)] = Field(default_factory=list)


@catalogue.action("create_agent", CreateAgentArgs)
def create_agent(ctx: ActionContext, args: CreateAgentArgs) -> Result:
    """Create an agent (system or user) with its prompt, tools, delegates and attached prompts."""
    agent = ctx.add(
        Agent(
            name=args.name,
            description=args.description,
            kind=AgentKind(args.kind),
            created_by=args.created_by,
            prompt=args.prompt,
            avatar_url=args.avatar_url,
            delegates_to=[str(item) for item in args.delegates_to],
            tools=[str(item) for item in args.tools],
            tags=list(args.tags),
            model=args.model,
            attached_prompts=[str(item) for item in args.attached_prompts],
            meta=args.meta,
        )
    )
    return Ok(str(agent.id))


class SendAgentMessageArgs(ActionArgs):
    thread_id: Annotated[uuid.UUID, Ref(AgentThread)]
    author_id: Annotated[uuid.UUID | None, Ref(User)] = None
    kind: Literal["user", "agent", "system"]
    content: LongText
    tool_call: Any = None
    result: Any = None


@catalogue.action("send_agent_message", SendAgentMessageArgs)
def send_agent_message(ctx: ActionContext, args: SendAgentMessageArgs) -> Result:
    """Append a message (user, agent or system) to an agent thread."""
    message = ctx.add(
        AgentMessage(
            thread_id=args.thread_id,
            author_id=args.author_id,
            kind=MessageKind(args.kind),
            content=args.content,
            tool_call=args.tool_call,
            result=args.result,
            meta=args.meta,
        )
    )
    thread = ctx.get(AgentThread, args.thread_id)
    if thread is not None:
        thread.updated_at = utcnow()
    return Ok(str(message.id))


class CreateAgentThreadArgs(ActionArgs):
    title: Name | None = None
    agent_id: Annotated[uuid.UUID | None, Ref(Agent)] = None
    created_by: Annotated[uuid.UUID | None, Ref(User)] = None


@catalogue.action("create_agent_thread", CreateAgentThreadArgs)
def create_agent_thread(ctx: ActionContext, args: CreateAgentThreadArgs) -> Result:
    """Open a conversation thread, optionally with one agent."""
    thread = ctx.add(
        AgentThread(
            title=args.title, agent_id=args.agent_id, created_by=args.created_by, meta=args.meta
        )
    )
    return Ok(str(thread.id))


class CreateToolArgs(ActionArgs):
    name: Name
    description: LongText | None = None
    integration_id: Annotated[uuid.UUID | None, Ref(Integration)] = None
    action: Name100 | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    created_by: Annotated[uuid.UUID | None, Ref(User)] = None


@catalogue.action("create_tool", CreateToolArgs)
def create_tool(ctx: ActionContext, args: CreateToolArgs) -> Result:
    """Create a tool, optionally bound to an integration (sendEmail, sendSMS, postToSlack...)."""
    tool = ctx.add(
        Tool(
            name=args.name,
            description=args.description,
            integration_id=args.integration_id,
            action=args.action,
            config=args.config,
            created_by=args.created_by,
            meta=args.meta,
        )
    )
    return Ok(str(tool.id))


class CreatePromptArgs(ActionArgs):
    name: Name
    content: LongText
    created_by: Annotated[uuid.UUID | None, Ref(User)] = None


@catalogue.action("create_prompt", CreatePromptArgs)
def create_prompt(ctx: ActionContext, args: CreatePromptArgs) -> Result:
    """Create a reusable prompt that agents can attach."""
    prompt = ctx.add(
        Prompt(name=args.name, content=args.content, created_by=args.created_by, meta=args.meta)
    )
    return Ok(str(prompt.id))
