"""How actions are declared: an argument model, a handler, and an explicit catalogue.

Argument models mirror the original validators: ``Annotated[UUID, Ref(Agent)]`` is an id that
must name a row of that table in the caller's organisation (checked before the handler runs),
``Literal[...]`` is a union of literals, a default makes a field optional. ``Sealed()`` marks a
field that is encrypted between the producer and the worker, so task arguments (which Flower
shows) never carry it in clear.

Every argument (nested ones too) is accepted under its snake_case name and its camelCase alias
(``created_by`` or ``createdBy``, as the ONE system's TypeScript producers write it), field by
field, and errors name a field as the caller spelled it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from dispatcher.config import get_settings
from dispatcher.errors import UnknownActionError, field_errors, field_path
from dispatcher.results import Err, ErrorCode, Result
from dispatcher.validation import meta_problem, storable
from models import Base


@dataclass(frozen=True)
class Ref:
    """The field holds the id (or ids) of rows of ``model`` in the caller's organisation."""

    model: type[Base]


@dataclass(frozen=True)
class Sealed:
    """The field is encrypted in task arguments."""


#: The configuration of every argument model, nested ones included: unknown fields are errors,
#: and a field is accepted under its name and its camelCase alias.
ARGUMENTS_CONFIG = ConfigDict(
    extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
)


class ActionArgs(BaseModel):
    """Base of every action's arguments: unknown fields are errors; ``meta`` is always allowed.

    Every field must be storable: no NUL characters or lone surrogates in text, no NaN, nothing
    that is not JSON inside free-form values (the error names the field). Text is stored exactly
    as sent; only names and keys (``Name``, ``Key`` and their narrower kin) are trimmed of
    surrounding whitespace. ``meta`` is bounded like a trigger's payload (bytes), and in keys
    and nesting. Each field is accepted as ``created_by`` or ``createdBy`` (see
    :data:`ARGUMENTS_CONFIG`); :meth:`spelled` tells which one the caller used.
    """

    model_config = ARGUMENTS_CONFIG

    meta: dict[str, Any] = Field(default_factory=dict)
    _sent_as: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)

    @field_validator("meta", mode="after")
    @classmethod
    def _meta_bounded(cls, meta: dict[str, Any]) -> dict[str, Any]:
        problem = meta_problem(meta, max_bytes=get_settings().max_payload_bytes)
        if problem is not None:
            raise ValueError(problem)
        return meta

    @model_validator(mode="wrap")
    @classmethod
    def _remember_spelling(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        args = handler(data)
        if isinstance(data, dict):
            args._sent_as = {
                name: info.alias
                for name, info in cls.model_fields.items()
                if info.alias and info.alias in data and name not in data
            }
        return args

    def spelled(self, field: str) -> str:
        """The field's name as the caller wrote it: ``createdBy`` or ``created_by``."""
        return self._sent_as.get(field, field)

    def as_sent(self) -> dict[str, Any]:
        """The fields the caller set, as JSON, each under the name the caller used."""
        dumped = self.model_dump(mode="json", exclude_unset=True)
        return {self.spelled(name): value for name, value in dumped.items()}


def argument_errors(error: ValidationError) -> list[dict[str, Any]]:
    """:func:`~dispatcher.errors.field_errors` of argument models, in the caller's spelling.

    Pydantic names a field that was sent as it was sent. A missing field it names by its
    camelCase alias; that is kept only where the caller writes camelCase at the same level,
    otherwise the field is named as the catalogue lists it (snake_case).
    """
    named = field_errors(error)
    details = error.errors(include_url=False)
    for item, detail in zip(named, details, strict=True):
        loc = detail["loc"]
        if detail["type"] == "missing" and loc and not _writes_camel(detail.get("input")):
            item["field"] = field_path((*loc[:-1], to_snake(str(loc[-1]))))
    return named


def _writes_camel(sent: Any) -> bool:
    return isinstance(sent, dict) and any(
        isinstance(key, str) and to_snake(key) != key for key in sent
    )


ArgsT = TypeVar("ArgsT", bound=ActionArgs)
ModelT = TypeVar("ModelT", bound=Base)


@dataclass
class ActionContext:
    """What a handler works with: one transaction, scoped to one organisation."""

    session: Session
    organisation_id: uuid.UUID

    def get(self, model: type[ModelT], row_id: uuid.UUID, *options: ORMOption) -> ModelT | None:
        """The row with this id in this organisation, or ``None`` (other tenants' rows too)."""
        organisation_column = model.__table__.c.organisation_id
        id_column = model.__table__.c.id
        return self.session.scalars(
            select(model)
            .options(*options)
            .where(id_column == row_id, organisation_column == self.organisation_id)
        ).one_or_none()

    def require(self, model: type[ModelT], row_id: uuid.UUID, field: str) -> ModelT | Err:
        row = self.get(model, row_id)
        if row is None:
            return not_found(field, model, [row_id])
        return row

    def add(self, row: ModelT) -> ModelT:
        row.organisation_id = self.organisation_id  # type: ignore[attr-defined]
        self.session.add(row)
        self.session.flush()
        return row


def not_found(field: str, model: type[Base], missing: list[uuid.UUID]) -> Err:
    table = model.__tablename__
    ids = ", ".join(str(item) for item in missing)
    return Err(
        ErrorCode.NOT_FOUND,
        f"{field}: no {table} row with id {ids} in this organisation",
        {"field": field, "table": table, "missing": [str(item) for item in missing]},
    )


Handler = Callable[[ActionContext, Any], Result]


@dataclass(frozen=True)
class ActionSpec(Generic[ArgsT]):
    name: str
    args_model: type[ArgsT]
    handler: Callable[[ActionContext, ArgsT], Result]
    description: str

    def references(self) -> Iterator[tuple[str, type[Base]]]:
        for field_name, info in self.args_model.model_fields.items():
            for marker in info.metadata:
                if isinstance(marker, Ref):
                    yield field_name, marker.model

    def sealed_keys(self) -> list[str]:
        """The argument keys a sealed field may travel under: its name and its alias."""
        keys: list[str] = []
        for name, info in self.args_model.model_fields.items():
            if any(isinstance(marker, Sealed) for marker in info.metadata):
                keys.extend(dict.fromkeys([name, info.alias or name]))
        return keys


class ActionCatalogue:
    """The explicit list of actions; handler modules register with :meth:`action`."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}

    def action(
        self, name: str, args_model: type[ArgsT]
    ) -> Callable[
        [Callable[[ActionContext, ArgsT], Result]], Callable[[ActionContext, ArgsT], Result]
    ]:
        def register(
            handler: Callable[[ActionContext, ArgsT], Result],
        ) -> Callable[[ActionContext, ArgsT], Result]:
            if name in self._specs:
                raise ValueError(f"action {name!r} is declared twice")
            description = (handler.__doc__ or "").strip().splitlines()[0:1]
            self._specs[name] = ActionSpec(
                name, args_model, handler, description[0] if description else ""
            )
            return handler

        return register

    def get(self, name: str) -> ActionSpec[Any]:
        try:
            return self._specs[name]
        except (KeyError, TypeError):  # TypeError: a name that is not even hashable
            raise UnknownActionError(str(name)[:200], self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __iter__(self) -> Iterator[ActionSpec[Any]]:
        return iter(self._specs[name] for name in self.names())


catalogue = ActionCatalogue()
