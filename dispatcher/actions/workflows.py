"""Workflow actions: a workflow and its ordered steps, templates checked when they are stored.

The functions here are the one place workflows are written, for the actions, the CLI (which
runs the actions) and the HTTP API alike:

* :func:`write_workflow` creates a workflow at version 1;
* :func:`write_version` changes one: new steps (or the current ones copied) are written as the
  rows of the next version and the workflow moves to it. The earlier rows stay, so a
  notification triggered before is sent with the steps it was planned from (its deliveries
  name their step rows; ``notifications.workflow_version`` records which version that was);
* :func:`remove_workflow` deletes softly: the row stays for the notifications that refer to it,
  its key is given up so a new workflow may take it.

Versions are step rows, not a JSON snapshot beside them, because both hot paths stay as they
were: a trigger reads the workflow with its current steps in one joined query
(:attr:`models.Workflow.steps` joins on the current version) and a worker reads the steps of
its deliveries by id. A snapshot would have made the worker read a version table instead, and
the trigger write step ids that point nowhere.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import select

from dispatcher.actions.base import ARGUMENTS_CONFIG, ActionArgs, ActionContext, catalogue
from dispatcher.actions.step_routing import routing_problems
from dispatcher.notifications.cron import parse_cron, parse_timezone
from dispatcher.notifications.digest_steps import MAX_KEY_TEMPLATE_LENGTH
from dispatcher.notifications.throttling import ThrottleConfig
from dispatcher.results import Err, ErrorCode, Ok, Result
from dispatcher.sending.conditions import Condition
from dispatcher.sending.fetch import FetchConfig
from dispatcher.sending.rendering import compile_template
from dispatcher.sending.translations import TRANSLATIONS
from dispatcher.validation import Key, LongText, Name, storable
from models import ChannelType, StepKind, Workflow, WorkflowStep
from models.types import utcnow

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

    @model_validator(mode="after")
    def _fetch_fits(self) -> StepArgs:
        # Defined before the wrap validator below, so that it runs inside it.
        if self.kind is StepKind.FETCH:
            if self.template:
                raise _step_config_error(
                    "template", "a fetch step has no templates: its url, headers and body are "
                    "templates in config"
                )  # fmt: skip
            _fetch_config(self.config)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _template_fields_belong_in_template(
        cls, data: Any, handler: ModelWrapValidatorHandler[StepArgs]
    ) -> StepArgs:
        # {"kind": "email", "subject": ...} is the commonest first guess: say where it goes.
        # A bad template is named down to its field: ``template.body``.
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not any(
                _misplaced_template_field(item["type"], item["loc"])
                or item["type"] in {"template", "step_config"}
                for item in errors
            ):
                raise
            details = [_located(item) for item in errors]
            raise ValidationError.from_exception_data(exc.title, details) from None

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)

    @field_validator("template")
    @classmethod
    def _templates_parse(cls, template: dict[str, str]) -> dict[str, str]:
        for name, source in template.items():
            if (problem := _template_problem(name, source)) is not None:
                raise _template_error(name, problem)
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
                if (problem := _template_problem(name, source)) is not None:
                    raise ValueError(f"{where}.{name}: {problem}")
        return config

    @field_validator("config")
    @classmethod
    def _digest_options(cls, config: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.data.get("kind") is StepKind.DIGEST:
            try:
                _digest_config(config)
            except _ConfigOptionError as exc:
                raise PydanticCustomError(
                    "step_config", "{problem}", {"option": exc.option, "problem": exc.problem}
                ) from None
        return config

    @model_validator(mode="after")
    def _config_fits_kind(self) -> StepArgs:
        # A digest's options are checked with the config field (``_digest_options``), so that
        # each error is named down to its option: ``steps.0.config.cron``.
        if self.kind is StepKind.DELAY:
            _positive_seconds(self.config, "seconds")
        elif self.kind is StepKind.THROTTLE:
            _throttle_config(self.config)
        elif self.kind is StepKind.FETCH:
            pass  # checked by _fetch_fits (whose errors the wrap validator locates)
        elif (
            self.kind in CHANNEL_KINDS
            and not self.template.get("body")
            and self.kind is not StepKind.PUSH
            # An email with only HTML gets its text part derived from it.
            and not (self.kind is StepKind.EMAIL and self.template.get("html"))
        ):
            raise ValueError("template.body: a channel step needs a body template")
        return self


def _located(item: Any) -> InitErrorDetails:
    if _misplaced_template_field(item["type"], item["loc"]):
        return InitErrorDetails(
            type=PydanticCustomError(
                "template_field",
                'put template fields under template: {"template": {"{name}": ...}}',
                {"name": item["loc"][-1]},
            ),
            loc=item["loc"],
            input=item["input"],
        )
    if item["type"] == "step_config":
        # A fetch's errors name a dotted field (``headers.X-Token``), a digest's one option.
        ctx = item["ctx"]
        path = ctx["field"].split(".") if "field" in ctx else [ctx["option"]]
        value = item["input"].get(path[0]) if isinstance(item["input"], dict) else None
        return InitErrorDetails(
            type=PydanticCustomError("step_config", "{problem}", {"problem": ctx["problem"]}),
            loc=(*item["loc"], *path),
            input=value if len(path) == 1 else None,
        )
    if item["type"] == "template":
        field = item["ctx"]["field"]
        return InitErrorDetails(
            type=PydanticCustomError("template", "{problem}", {"problem": item["ctx"]["problem"]}),
            loc=(*item["loc"], field),
            input=item["input"].get(field) if isinstance(item["input"], dict) else item["input"],
        )
    return cast(InitErrorDetails, item)


def _template_problem(name: str, source: str) -> str | None:
    """What is wrong with one template field, or ``None``; an unknown field name raises."""
    if name not in TEMPLATE_FIELDS:
        raise ValueError(f"unknown template field {name!r}; use {sorted(TEMPLATE_FIELDS)}")
    if len(source) > MAX_TEMPLATE_LENGTH:
        return f"template longer than {MAX_TEMPLATE_LENGTH} characters"
    try:
        compile_template(_syntax, source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    return None


def _template_error(field: str, problem: str) -> PydanticCustomError:
    return PydanticCustomError(
        "template", "{field}: {problem}", {"field": field, "problem": problem}
    )


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


#: A digest step's options: released after ``window_seconds`` or at ``cron`` (in ``timezone``,
#: else the subscriber's), per subscriber and rendered ``key``.
DIGEST_OPTIONS = ("window_seconds", "cron", "timezone", "key")
MAX_CRON_LENGTH = 200


class _ConfigOptionError(ValueError):
    """What is wrong with one option of a step's ``config``: reported as ``steps.N.config.X``."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"config.{option}: {problem}")
        self.option = option
        self.problem = problem


def _digest_config(config: dict[str, Any]) -> None:
    """Check a digest step's ``config``; its cron expression is stored normalised."""
    unknown = sorted(set(config) - set(DIGEST_OPTIONS))
    if unknown:
        raise _ConfigOptionError(
            unknown[0], f"not a digest option; use {', '.join(DIGEST_OPTIONS)}"
        )
    if "cron" in config and "window_seconds" in config:
        raise _ConfigOptionError("cron", "give either window_seconds or cron, not both")
    if "cron" in config:
        config["cron"] = _digest_cron(config["cron"])
        if "timezone" in config:
            _digest_timezone(config["timezone"])
    elif "window_seconds" in config:
        try:
            _positive_seconds(config, "window_seconds")
        except ValueError as exc:
            raise _ConfigOptionError("window_seconds", str(exc).partition(": ")[2]) from None
        if "timezone" in config:
            raise _ConfigOptionError("timezone", "only a cron digest is read in a time zone")
    else:
        raise _ConfigOptionError(
            "window_seconds",
            "a digest needs window_seconds (seconds to collect for) or "
            "cron (when to release, such as '0 9 * * *')",
        )
    if "key" in config:
        _digest_key(config["key"])


def _digest_cron(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CRON_LENGTH:
        raise _ConfigOptionError(
            "cron", f"a cron expression such as '0 9 * * *' (at most {MAX_CRON_LENGTH} characters)"
        )
    try:
        return parse_cron(value)
    except ValueError as exc:
        raise _ConfigOptionError("cron", str(exc)) from None


def _digest_timezone(value: Any) -> None:
    if not isinstance(value, str) or len(value) > 64:
        raise _ConfigOptionError("timezone", "an IANA time zone name such as Europe/London")
    try:
        parse_timezone(value)
    except ValueError as exc:
        raise _ConfigOptionError("timezone", str(exc)) from None


def _digest_key(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _ConfigOptionError("key", "a template such as '{{ payload.project_id }}'")
    if len(value) > MAX_KEY_TEMPLATE_LENGTH:
        raise _ConfigOptionError(
            "key", f"a template of at most {MAX_KEY_TEMPLATE_LENGTH} characters"
        )
    try:
        compile_template(_syntax, value)
    except TemplateSyntaxError as exc:
        raise _ConfigOptionError(
            "key", f"template syntax error on line {exc.lineno}: {exc.message}"
        ) from None


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


def _fetch_config(config: dict[str, Any]) -> None:
    """A fetch step's config fits :class:`FetchConfig` and its templates parse; an error is
    named down to its field (``config.url``, ``config.headers.X-Token``)."""
    try:
        fetch = FetchConfig.model_validate(config)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in ("config", *first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        if where == "config" and message.startswith("body: "):
            where, message = "config.body", message.removeprefix("body: ")
        raise _step_config_error(where, message) from None
    for where, source in fetch.templates().items():
        if len(source) > MAX_TEMPLATE_LENGTH:
            raise _step_config_error(
                f"config.{where}", f"template longer than {MAX_TEMPLATE_LENGTH} characters"
            )
        try:
            compile_template(_syntax, source)
        except TemplateSyntaxError as exc:
            raise _step_config_error(
                f"config.{where}", f"template syntax error on line {exc.lineno}: {exc.message}"
            ) from None


def _step_config_error(field: str, problem: str) -> PydanticCustomError:
    """An error of one step located at ``field`` (dotted, inside the step)."""
    return PydanticCustomError(
        "step_config", "{field}: {problem}", {"field": field, "problem": problem}
    )


def _folds_overflow(step: StepArgs) -> bool:
    return step.kind is StepKind.THROTTLE and step.config.get("overflow") == "digest"


def _no_fetch_before_digest(steps: list[StepArgs]) -> list[StepArgs]:
    """A digest, or a throttle folding its overflow into one, comes before any fetch; and a
    workflow has one way of collecting notifications: one digest step or one such throttle."""
    collecting = [i for i, step in enumerate(steps)
                  if step.kind is StepKind.DIGEST or _folds_overflow(step)]  # fmt: skip
    throttles = [i for i, step in enumerate(steps) if step.kind is StepKind.THROTTLE]
    folding = next((i for i in collecting if _folds_overflow(steps[i])), None)
    if folding is not None and (len(collecting) > 1 or len(throttles) > 1):
        raise ValueError(
            f"steps.{folding}.config.overflow: a throttle folding its overflow into a digest "
            "must be the workflow's only throttle and digest step"
        )
    fetch = next((i for i, step in enumerate(steps) if step.kind is StepKind.FETCH), None)
    digest = collecting[0] if collecting else None
    if fetch is not None and digest is not None and fetch < digest:
        # A notification collected into another's digest would fetch for nothing, and the
        # digest could be sent before the events' fetches finished.
        raise ValueError(
            f"steps.{fetch}: a fetch step before a digest step is not supported; put it after "
            "the digest (it then fetches once for the digest)"
        )
    return steps


def _routing_refers_backwards(value: Any, handler: ValidatorFunctionWrapHandler) -> list[StepArgs]:
    """The steps' ``success`` and ``wait_for`` options checked across the steps, each problem
    named by its path (``2.config.wait_for.step`` under ``steps``)."""
    steps: list[StepArgs] = handler(value)
    problems = routing_problems(steps)
    if problems:
        raise ValidationError.from_exception_data(
            "steps",
            [
                InitErrorDetails(
                    type=PydanticCustomError("routing", "{problem}", {"problem": problem}),
                    loc=loc,
                    input=steps[int(loc[0])].config,
                )
                for loc, problem in problems
            ],
        )
    return steps


Steps = Annotated[
    list[StepArgs],
    Field(min_length=1, max_length=50),
    AfterValidator(_no_fetch_before_digest),
    WrapValidator(_routing_refers_backwards),
]


class CreateWorkflowArgs(ActionArgs):
    key: Key
    name: Name
    description: LongText | None = None
    critical: bool = False
    steps: Steps


class UpdateWorkflowArgs(ActionArgs):
    """The fields given change; the others keep their values. Any change makes a new version."""

    key: Key
    name: Name | None = None
    description: LongText | None = None
    critical: bool | None = None
    active: bool | None = None
    steps: Steps | None = None


class DeleteWorkflowArgs(ActionArgs):
    key: Key


def find_workflow(ctx: ActionContext, key: str, *, lock: bool = False) -> Workflow | None:
    """The organisation's workflow with this key, not deleted (other tenants' read as missing).
    With ``lock`` the row is held until commit, so two changes make two versions in turn."""
    query = select(Workflow).where(
        Workflow.organisation_id == ctx.organisation_id,
        Workflow.key == key,
        Workflow.deleted_at.is_(None),
    )
    return ctx.session.scalars(query.with_for_update() if lock else query).one_or_none()


def write_workflow(ctx: ActionContext, args: CreateWorkflowArgs) -> Workflow:
    """A new workflow at version 1 with ``args.steps``."""
    workflow = ctx.add(
        Workflow(
            key=args.key,
            name=args.name,
            description=args.description,
            critical=args.critical,
            meta=args.meta,
        )
    )
    _write_steps(ctx, workflow, 1, [_step_row(step) for step in args.steps])
    return workflow


def write_version(ctx: ActionContext, workflow: Workflow, args: UpdateWorkflowArgs) -> Workflow:
    """The workflow changed as ``args`` says, at its next version."""
    fields = args.model_fields_set - {"key", "steps", "meta"}
    for name in fields:
        value = getattr(args, name)
        if value is not None or name == "description":
            setattr(workflow, name, value)
    if "meta" in args.model_fields_set:
        workflow.meta = args.meta
    if args.steps is not None:
        rows = [_step_row(step) for step in args.steps]
    else:
        rows = [
            {"kind": step.kind, "template": step.template, "conditions": step.conditions,
             "config": step.config}
            for step in workflow.steps
        ]  # fmt: skip
    version = workflow.version + 1
    _write_steps(ctx, workflow, version, rows)
    workflow.version = version
    workflow.updated_at = utcnow()
    ctx.session.flush()
    ctx.session.expire(workflow, ["steps"])
    return workflow


def remove_workflow(ctx: ActionContext, workflow: Workflow) -> None:
    """Delete softly: no new trigger finds it; what it sent and is sending stays."""
    workflow.meta = {**workflow.meta, "deleted_key": workflow.key}
    workflow.key = f"~{workflow.id.hex}"  # outside Key's alphabet: no live key is ever this
    workflow.active = False
    workflow.deleted_at = utcnow()
    ctx.session.flush()


def _step_row(step: StepArgs) -> dict[str, Any]:
    return {
        "kind": StepKind(step.kind),
        "template": step.template,
        "conditions": [item.model_dump(mode="json") for item in step.conditions],
        "config": step.config,
    }


def _write_steps(
    ctx: ActionContext, workflow: Workflow, version: int, rows: list[dict[str, Any]]
) -> None:
    for position, row in enumerate(rows):
        ctx.session.add(
            WorkflowStep(
                organisation_id=ctx.organisation_id,
                workflow_id=workflow.id,
                version=version,
                position=position,
                **row,
            )
        )
    ctx.session.flush()


def _missing(key: str) -> Err:
    return Err(ErrorCode.NOT_FOUND, f"key: no workflow {key!r} in this organisation",
               {"field": "key"})  # fmt: skip


@catalogue.action("create_workflow", CreateWorkflowArgs)
def create_workflow(ctx: ActionContext, args: CreateWorkflowArgs) -> Result:
    """Create a workflow from its ordered steps (email, sms, chat, push, webhook, in_app, ...)."""
    return Ok(str(write_workflow(ctx, args).id))


@catalogue.action("update_workflow", UpdateWorkflowArgs)
def update_workflow(ctx: ActionContext, args: UpdateWorkflowArgs) -> Result:
    """Change a workflow (its name, flags or steps); notifications already triggered keep the
    version they were triggered with. Returns the new version number."""
    workflow = find_workflow(ctx, args.key, lock=True)
    if workflow is None:
        return _missing(args.key)
    return Ok(write_version(ctx, workflow, args).version)


@catalogue.action("delete_workflow", DeleteWorkflowArgs)
def delete_workflow(ctx: ActionContext, args: DeleteWorkflowArgs) -> Result:
    """Delete a workflow: no new trigger finds it; notifications already triggered go on."""
    workflow = find_workflow(ctx, args.key, lock=True)
    if workflow is None:
        return _missing(args.key)
    remove_workflow(ctx, workflow)
    return Ok(str(workflow.id))
