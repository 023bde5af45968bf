"""Workflow actions: a workflow and its ordered steps, templates checked when they are stored."""

from __future__ import annotations

import re
from typing import Any, cast

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from dispatcher.actions.base import ARGUMENTS_CONFIG, ActionArgs, ActionContext, catalogue
from dispatcher.notifications.throttling import ThrottleConfig
from dispatcher.results import Ok, Result
from dispatcher.sending.conditions import Condition
from dispatcher.sending.rendering import compile_template
from dispatcher.sending.translations import TRANSLATIONS
from dispatcher.validation import Key, LongText, Name, storable
from models import ChannelType, StepKind, Workflow, WorkflowStep

TEMPLATE_FIELDS = frozenset({"subject", "body", "html", "title"})
MAX_TEMPLATE_LENGTH = 100_000
#: A BCP 47-like locale tag: ``de``, ``pt-BR``, ``zh_Hant``.
LOCALE = re.compile(r"[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8}){0,3}")

_syntax = SandboxedEnvironment()


class StepArgs(BaseModel):
    model_config = ARGUMENTS_CONFIG

    kind: StepKind
    #: ``subject``, ``body``, ``html``, ``title``: Jinja2 templates (rendered sandboxed).
    template: dict[str, str] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _template_fields_belong_in_template(
        cls, data: Any, handler: ModelWrapValidatorHandler[StepArgs]
    ) -> StepArgs:
        # {"kind": "email", "subject": ...} is the commonest first guess: say where it goes.
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not any(_misplaced_template_field(item["type"], item["loc"]) for item in errors):
                raise
            details = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "template_field",
                        'put template fields under template: {"template": {"{name}": ...}}',
                        {"name": item["loc"][-1]},
                    ),
                    loc=item["loc"],
                    input=item["input"],
                )
                if _misplaced_template_field(item["type"], item["loc"])
                else cast(InitErrorDetails, item)
                for item in errors
            ]
            raise ValidationError.from_exception_data(exc.title, details) from None

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)

    @field_validator("template")
    @classmethod
    def _templates_parse(cls, template: dict[str, str]) -> dict[str, str]:
        for name, source in template.items():
            _check_template(name, name, source)
        return template

    @field_validator("config")
    @classmethod
    def _translations_parse(cls, config: dict[str, Any]) -> dict[str, Any]:
        layout = config.get("layout")
        if layout is not None and layout is not False and not isinstance(layout, str):
            raise ValueError("config.layout: a layout's key, or false for none")
        translations = config.get(TRANSLATIONS)
        if translations is None:
            return config
        if not isinstance(translations, dict):
            raise ValueError("config.translations: an object of locale -> template fields")
        for locale, fields in translations.items():
            where = f"config.translations.{locale}"
            if not LOCALE.fullmatch(locale):
                raise ValueError(f"{where}: not a locale tag such as 'de' or 'pt-BR'")
            if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
                raise ValueError(f"{where}: an object of template fields")
            for name, source in fields.items():
                _check_template(f"{where}.{name}", name, source)
        return config

    @model_validator(mode="after")
    def _config_fits_kind(self) -> StepArgs:
        if self.kind is StepKind.DELAY:
            _positive_seconds(self.config, "seconds")
        elif self.kind is StepKind.DIGEST:
            _positive_seconds(self.config, "window_seconds")
        elif self.kind is StepKind.THROTTLE:
            _throttle_config(self.config)
        elif (
            self.kind in CHANNEL_KINDS
            and not self.template.get("body")
            and self.kind is not StepKind.PUSH
            # An email with only HTML gets its text part derived from it.
            and not (self.kind is StepKind.EMAIL and self.template.get("html"))
        ):
            raise ValueError("template.body: a channel step needs a body template")
        return self


def _check_template(where: str, name: str, source: str) -> None:
    if name not in TEMPLATE_FIELDS:
        raise ValueError(f"unknown template field {name!r}; use {sorted(TEMPLATE_FIELDS)}")
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise ValueError(f"{where}: template longer than {MAX_TEMPLATE_LENGTH} characters")
    try:
        compile_template(_syntax, source)
    except TemplateSyntaxError as exc:
        raise ValueError(
            f"{where}: template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


def _misplaced_template_field(error_type: str, location: tuple[int | str, ...]) -> bool:
    return error_type == "extra_forbidden" and len(location) == 1 and location[0] in TEMPLATE_FIELDS


CHANNEL_KINDS = frozenset(StepKind(channel.value) for channel in ChannelType)
MAX_WAIT_SECONDS = 90 * 24 * 3600


def _positive_seconds(config: dict[str, Any], key: str) -> None:
    value = config.get(key)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 < value <= MAX_WAIT_SECONDS
    ):
        raise ValueError(f"config.{key}: a number of seconds between 1 and {MAX_WAIT_SECONDS}")


def _throttle_config(config: dict[str, Any]) -> None:
    try:
        throttle = ThrottleConfig.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"config.{where}: {first['msg']}") from None
    if throttle.key:
        try:
            compile_template(_syntax, throttle.key)
        except TemplateSyntaxError as exc:
            raise ValueError(
                f"config.key: template syntax error on line {exc.lineno}: {exc.message}"
            ) from None


class CreateWorkflowArgs(ActionArgs):
    key: Key
    name: Name
    description: LongText | None = None
    critical: bool = False
    steps: list[StepArgs] = Field(min_length=1, max_length=50)


@catalogue.action("create_workflow", CreateWorkflowArgs)
def create_workflow(ctx: ActionContext, args: CreateWorkflowArgs) -> Result:
    """Create a workflow from its ordered steps (email, sms, chat, push, webhook, in_app, ...)."""
    workflow = ctx.add(
        Workflow(
            key=args.key,
            name=args.name,
            description=args.description,
            critical=args.critical,
            meta=args.meta,
        )
    )
    for position, step in enumerate(args.steps):
        ctx.add(
            WorkflowStep(
                workflow_id=workflow.id,
                position=position,
                kind=StepKind(step.kind),
                template=step.template,
                conditions=[item.model_dump(mode="json") for item in step.conditions],
                config=step.config,
            )
        )
    return Ok(str(workflow.id))
