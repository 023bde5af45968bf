"""How actions are declared: an argument model, a handler, and an explicit catalogue.

Argument models mirror the original validators: ``Annotated[UUID, Ref(Agent)]`` is an id that
must name a row of that table in the caller's organisation (checked before the handler runs),
``Literal[...]`` is a union of literals, a default makes a field optional. ``Sealed()`` marks a
field that is encrypted between the producer and the worker, so task arguments (which Flower
shows) never carry it in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from dispatcher.errors import UnknownActionError
from dispatcher.results import Err, ErrorCode, Result
from dispatcher.validation import storable
from models import Base


@dataclass(frozen=True)
class Ref:
    """The field holds the id (or ids) of rows of ``model`` in the caller's organisation."""

    model: type[Base]


@dataclass(frozen=True)
class Sealed:
    """The field is encrypted in task arguments."""


class ActionArgs(BaseModel):
    """Base of every action's arguments: unknown fields are errors; ``meta`` is always allowed.

    Every field must be storable: no NUL characters or lone surrogates in text, no NaN, nothing
    that is not JSON inside free-form values (the error names the field).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return storable(value)


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

    def sealed_fields(self) -> list[str]:
        return [
            name
            for name, info in self.args_model.model_fields.items()
            if any(isinstance(marker, Sealed) for marker in info.metadata)
        ]


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
