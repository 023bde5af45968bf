"""The action ledger: a redelivered task answers its first result, and only within its own
organisation."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from dispatcher.actions.runner import execute
from dispatcher.organisations import create_organisation
from dispatcher.results import Err, ErrorCode, Ok
from dispatcher.runtime.resources import database
from models import ActionRun, User

pytestmark = pytest.mark.usefixtures("postgres_url")


def run(organisation_id: uuid.UUID, email: str, run_id: uuid.UUID) -> Ok | Err:
    with database().session() as session:
        return execute(
            "create_user", {"email": email, "name": "Ada"}, organisation_id, session, run_id=run_id
        )


def users(email: str) -> list[uuid.UUID]:
    with database().session() as session:
        return list(session.scalars(select(User.organisation_id).where(User.email == email)))


def test_a_redelivered_run_answers_its_first_result_without_a_second_effect() -> None:
    organisation_id = create_organisation(f"Ledger {uuid.uuid4().hex[:6]}")
    run_id = uuid.uuid4()
    first = run(organisation_id, "ada@example.com", run_id)
    again = run(organisation_id, "ada@example.com", run_id)
    assert isinstance(first, Ok) and again == first
    assert users("ada@example.com").count(organisation_id) == 1


def test_another_organisations_run_id_reads_nothing_of_its_ledger() -> None:
    owner, intruder = (create_organisation(f"Ledger {uuid.uuid4().hex[:6]}") for _ in range(2))
    run_id = uuid.uuid4()
    mine = run(owner, "owner@example.com", run_id)
    assert isinstance(mine, Ok)
    theirs = run(intruder, "intruder@example.com", run_id)
    # Not the owner's result, and no effect in the intruder's organisation either.
    assert theirs != mine
    assert isinstance(theirs, Err) and theirs.code is ErrorCode.CONFLICT
    assert users("intruder@example.com") == []
    with database().session() as session:
        ledger = session.scalars(select(ActionRun.organisation_id).where(ActionRun.id == run_id))
        assert list(ledger) == [owner]
