"""Running one action: validate, check references in the organisation, call the handler, commit.

Every outcome is a :class:`~dispatcher.results.Result`. Bad input, unknown ids, other tenants'
ids and constraint violations are ``Err`` values; only a lost database connection is raised
(:data:`DATABASE_UNAVAILABLE`), so the Celery task can retry it with backoff.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from dispatcher.actions.base import (
    ActionArgs,
    ActionContext,
    ActionSpec,
    argument_errors,
    catalogue,
    not_found,
)
from dispatcher.actions.sealing import unseal
from dispatcher.errors import UnknownActionError
from dispatcher.results import Err, ErrorCode, Ok, Result, from_wire, to_wire
from dispatcher.runtime.db import DATABASE_UNAVAILABLE
from models import ActionRun, KeyRingError, Organisation


class _Rollback(Exception):  # noqa: N818 - control flow, never escapes this module
    def __init__(self, result: Err) -> None:
        self.result = result


def invalid_args(error: ValidationError) -> Err:
    errors = argument_errors(error)
    listed = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    return Err(ErrorCode.INVALID_ARGS, f"invalid arguments: {listed}", {"errors": errors})


def parse_organisation_id(value: Any) -> uuid.UUID | Err:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return Err(
            ErrorCode.INVALID_ARGS,
            "organisation_id: not a UUID",
            {"errors": [{"field": "organisation_id", "message": "not a UUID"}]},
        )


def run_id_for(task_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(task_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"celery-task:{task_id}")


def check_references(ctx: ActionContext, spec: ActionSpec[Any], args: ActionArgs) -> Err | None:
    """Every ``Ref`` field names rows of its table in this organisation (the error names the
    field as the caller spelled it)."""
    for field, model in spec.references():
        value = getattr(args, field)
        ids: list[uuid.UUID] = (
            list(dict.fromkeys(value)) if isinstance(value, list) else [value] if value else []
        )
        if not ids:
            continue
        table = model.__table__
        found = set(
            ctx.session.scalars(
                select(table.c.id).where(
                    table.c.id.in_(ids), table.c.organisation_id == ctx.organisation_id
                )
            )
        )
        missing = [item for item in ids if item not in found]
        if missing:
            return not_found(args.spelled(field), model, missing)
    return None


def prepare(
    name: str, arguments: Any, organisation_id: Any
) -> tuple[ActionSpec[Any], Any, uuid.UUID] | Err:
    """Look up the action and validate its arguments, as a worker receives them."""
    try:
        spec = catalogue.get(name)
    except UnknownActionError as exc:
        return Err(ErrorCode.UNKNOWN_ACTION, str(exc))
    organisation = parse_organisation_id(organisation_id)
    if isinstance(organisation, Err):
        return organisation
    if not isinstance(arguments, dict):
        return Err(ErrorCode.INVALID_ARGS, "arguments: must be a JSON object")
    try:
        args = spec.args_model.model_validate(unseal(spec, arguments))
    except ValidationError as exc:
        return invalid_args(exc)
    except (KeyRingError, ValueError):
        return Err(ErrorCode.INVALID_ARGS, "a sealed field cannot be opened with this key ring")
    return spec, args, organisation


def execute(
    name: str,
    arguments: Any,
    organisation_id: Any,
    session: Session,
    *,
    run_id: uuid.UUID | None = None,
) -> Result:
    """Run one action in ``session`` (which must not be in a transaction yet)."""
    prepared = prepare(name, arguments, organisation_id)
    if isinstance(prepared, Err):
        return prepared
    spec, args, organisation = prepared
    try:
        with session.begin():
            return _run_in_transaction(spec, args, organisation, session, run_id)
    except _Rollback as rollback:
        return rollback.result
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        detail = f" ({constraint})" if constraint else ""
        return Err(
            ErrorCode.CONFLICT,
            f"the change conflicts with existing rows{detail}",
            {"constraint": constraint} if constraint else {},
        )
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, DATABASE_UNAVAILABLE):
            raise
        return Err(
            ErrorCode.INVALID_ARGS, f"the database rejected the values ({type(exc.orig).__name__})"
        )


def _run_in_transaction(
    spec: ActionSpec[Any],
    args: Any,
    organisation_id: uuid.UUID,
    session: Session,
    run_id: uuid.UUID | None,
) -> Result:
    if session.get(Organisation, organisation_id) is None:
        return Err(
            ErrorCode.NOT_FOUND,
            "organisation_id: no such organisation",
            {"field": "organisation_id"},
        )
    if run_id is not None:
        # Scoped to the organisation: a run id of another organisation's ledger answers nothing
        # of it (the insert below then conflicts, and the effect is rolled back).
        previous = session.scalar(
            select(ActionRun.result).where(
                ActionRun.id == run_id, ActionRun.organisation_id == organisation_id
            )
        )
        if previous is not None:
            # A redelivered task: the effect is already committed; answer the same result.
            return from_wire(previous)
    ctx = ActionContext(session=session, organisation_id=organisation_id)
    missing = check_references(ctx, spec, args)
    if missing is not None:
        return missing
    result = spec.handler(ctx, args)
    if isinstance(result, Err):
        raise _Rollback(result)
    if run_id is not None:
        session.add(
            ActionRun(
                id=run_id, organisation_id=organisation_id, action=spec.name, result=to_wire(result)
            )
        )
    return result


__all__ = ["Ok", "execute", "invalid_args", "run_id_for"]
