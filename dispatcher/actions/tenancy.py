"""People and groups inside an organisation."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import EmailStr

from dispatcher.actions.base import ActionArgs, ActionContext, Ref, catalogue
from dispatcher.results import Ok, Result
from dispatcher.validation import LongText, Name, Name50
from models import Group, Membership, User


class CreateUserArgs(ActionArgs):
    name: Name
    email: EmailStr | None = None


@catalogue.action("create_user", CreateUserArgs)
def create_user(ctx: ActionContext, args: CreateUserArgs) -> Result:
    """Create a user of the organisation."""
    user = ctx.add(User(name=args.name, email=args.email, meta=args.meta))
    return Ok(str(user.id))


class CreateGroupArgs(ActionArgs):
    name: Name
    description: LongText | None = None


@catalogue.action("create_group", CreateGroupArgs)
def create_group(ctx: ActionContext, args: CreateGroupArgs) -> Result:
    """Create a group of users (grants can be made to groups)."""
    group = ctx.add(Group(name=args.name, description=args.description, meta=args.meta))
    return Ok(str(group.id))


class AddGroupMemberArgs(ActionArgs):
    group_id: Annotated[uuid.UUID, Ref(Group)]
    user_id: Annotated[uuid.UUID, Ref(User)]
    role: Name50 = "member"


@catalogue.action("add_group_member", AddGroupMemberArgs)
def add_group_member(ctx: ActionContext, args: AddGroupMemberArgs) -> Result:
    """Add a user to a group."""
    membership = ctx.add(
        Membership(group_id=args.group_id, user_id=args.user_id, role=args.role, meta=args.meta)
    )
    return Ok(str(membership.id))
