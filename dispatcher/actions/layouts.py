"""Email layout actions: an organisation's frame around its email steps, checked when stored."""

from __future__ import annotations

from typing import Annotated

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import Field, StringConstraints, field_validator
from sqlalchemy import update

from dispatcher.actions.base import ActionArgs, ActionContext, catalogue
from dispatcher.results import Ok, Result
from dispatcher.sending.rendering import compile_template
from dispatcher.validation import Key, LongText, Name, Url
from models import EmailLayout

_syntax = SandboxedEnvironment()

Colour = Annotated[str, StringConstraints(max_length=50)]


class CreateLayoutArgs(ActionArgs):
    key: Key
    name: Name
    #: Jinja2 with ``{{ body }}``; ``subject``, ``logo_url``, ``colors``, ``footer``,
    #: ``subscriber`` and ``payload`` may be used too.
    html: LongText
    logo_url: Url | None = None
    colors: dict[Annotated[str, StringConstraints(max_length=50)], Colour] = Field(
        default_factory=dict, max_length=50
    )
    #: HTML placed as it is, where the layout uses ``{{ footer }}``.
    footer: LongText | None = None
    #: Wrap every email step that names no layout (the previous default stops being one).
    default: bool = False

    @field_validator("html")
    @classmethod
    def _has_body(cls, source: str) -> str:
        try:
            tree = compile_template(_syntax, source)
        except TemplateSyntaxError as exc:
            raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
        if "body" not in meta.find_undeclared_variables(tree):
            raise ValueError("a layout places the email's content with {{ body }}")
        return source


@catalogue.action("create_layout", CreateLayoutArgs)
def create_layout(ctx: ActionContext, args: CreateLayoutArgs) -> Result:
    """Create an email layout (logo, colours, footer around {{ body }}), optionally the default."""
    if args.default:
        ctx.session.execute(
            update(EmailLayout)
            .where(EmailLayout.organisation_id == ctx.organisation_id)
            .values(is_default=False)
        )
    layout = ctx.add(
        EmailLayout(
            key=args.key, name=args.name, html=args.html, logo_url=args.logo_url,
            colors=args.colors, footer=args.footer, is_default=args.default, meta=args.meta,
        )
    )  # fmt: skip
    return Ok(str(layout.id))
