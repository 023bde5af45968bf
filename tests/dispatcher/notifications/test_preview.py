"""Preview: a step rendered as a worker would render it, with nothing sent or written."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.notifications.events import InlineSubscriber
from dispatcher.notifications.preview import PreviewError, preview
from dispatcher.runtime.resources import database
from models import Base
from tests.dispatcher.cli.support import run_cli
from tests.dispatcher.notify_support import subscriber, workflow

STEPS: list[dict[str, Any]] = [
    {"kind": "delay", "config": {"seconds": 60}},
    {
        "kind": "email",
        "template": {
            "subject": "Order {{ payload.orderId }}",
            "body": "Hi {{ subscriber.first_name }},\nyour order {{ payload.orderId }} shipped.",
            "html": "<p>{{ payload.orderId }}</p>",
        },
        "conditions": [{"field": "payload.express", "op": "eq", "value": True}],
        "config": {
            "translations": {
                "pt": {"subject": "Pedido {{ payload.orderId }}"},
                "de": {"subject": "Bestellung\n{{ payload.orderId.x.y }}"},
            }
        },
    },
    {"kind": "sms", "template": {"body": "line one\n{{ payload.items[0].name }}"}},
]


def row_counts(organisation_id: uuid.UUID) -> dict[str, int]:
    """The organisation's rows in every table (the session worker may meanwhile be finishing
    other tests' deliveries and webhooks, in rows of their own organisations)."""
    with database().session() as session:
        return {
            table.name: int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(
                        table.c.organisation_id == organisation_id
                        if "organisation_id" in table.c
                        else table.c.id == organisation_id
                    )
                )
                or 0
            )
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def org(organisation_id: uuid.UUID) -> uuid.UUID:
    subscriber(organisation_id, "ana", first_name="Ana", locale="pt-BR")
    subscriber(organisation_id, "max", first_name="Max", locale="de")
    workflow(organisation_id, "shipped", STEPS)
    return organisation_id


def test_renders_the_subscribers_translation_and_writes_no_row(org: uuid.UUID) -> None:
    before = row_counts(org)
    shown = preview(org, "shipped", 1, {"orderId": "A-7", "express": True}, subscriber_id="ana")
    assert row_counts(org) == before
    assert (shown.kind, shown.channel, shown.locale, shown.conditions_hold) == (
        "email", "email", "pt", True,
    )  # fmt: skip
    assert shown.content == {
        "subject": "Pedido A-7",
        "body": "Hi Ana,\nyour order A-7 shipped.",
        "html": "<p>A-7</p>",
    }
    assert shown.warnings == []


def test_a_broken_translation_is_a_warning_beside_the_default_text(org: uuid.UUID) -> None:
    shown = preview(org, "shipped", 1, {"orderId": "A-7"}, subscriber_id="max")
    assert shown.locale is None
    assert shown.content["subject"] == "Order A-7"
    assert shown.conditions_hold is False
    [warning] = shown.warnings
    assert (warning.field, warning.line) == ("steps.1.translations.de.subject", 2)


def test_an_inline_subscriber_and_a_non_channel_step(org: uuid.UUID) -> None:
    before = row_counts(org)
    inline = InlineSubscriber(subscriber_id="new-one", first_name="Neu", locale="ja")
    shown = preview(org, "shipped", 1, {"orderId": "B-1"}, subscriber=inline)
    assert shown.content["body"] == "Hi Neu,\nyour order B-1 shipped."
    delay = preview(org, "shipped", 0, {}, subscriber=inline)
    assert (delay.kind, delay.channel, delay.content) == ("delay", None, {})
    assert row_counts(org) == before


def test_a_template_error_names_the_step_the_field_and_the_line(org: uuid.UUID) -> None:
    with pytest.raises(PreviewError) as failed:
        preview(org, "shipped", 2, {"items": []}, subscriber_id="ana")
    assert failed.value.field == "steps.2.template.body"
    assert failed.value.line == 2
    assert "step 2, body on line 2" in str(failed.value)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"workflow_key": "nope", "step": 0, "subscriber_id": "ana"}, "workflow"),
        ({"workflow_key": "shipped", "step": 3, "subscriber_id": "ana"}, "step"),
        ({"workflow_key": "shipped", "step": 1, "subscriber_id": "nobody"}, "subscriberId"),
        ({"workflow_key": "shipped", "step": 1}, "subscriberId"),
    ],
)
def test_what_cannot_be_previewed_is_named(
    org: uuid.UUID, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(PreviewError) as failed:
        preview(org, payload={"orderId": "1"}, **arguments)
    assert failed.value.field == field


def test_the_cli_prints_the_rendered_step_and_names_a_template_error(org: uuid.UUID) -> None:
    env = dict(os.environ)
    before = row_counts(org)
    shown = run_cli(env, "preview", "shipped", "--org", str(org), "--step", "1", "--to", "ana",
                    "--payload", '{"orderId": "C-3"}')  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["content"]["subject"] == "Pedido C-3"
    failed = run_cli(env, "preview", "shipped", "--org", str(org), "--step", "2",
                     "--to", '{"subscriber_id": "x"}', "--payload", '{"items": []}')  # fmt: skip
    assert failed.returncode == 1
    assert "steps.2.template.body: step 2, body on line 2" in failed.stderr
    assert row_counts(org) == before


def test_a_step_after_a_keyed_digest_previews_with_its_key(organisation_id: uuid.UUID) -> None:
    subscriber(organisation_id, "ana", data={"team": "red"})
    steps = [
        {"kind": "digest",
         "config": {"cron": "0 9 * * *", "key": "{{ payload.p }}/{{ subscriber.data.team }}"}},
        {"kind": "email", "template": {"subject": "[{{ digest.key }}] {{ digest.count }}",
                                       "body": "{{ digest.events[0].p }}"}},
    ]  # fmt: skip
    workflow(organisation_id, "daily", steps)
    shown = preview(organisation_id, "daily", 1, {"p": "alpha"}, subscriber_id="ana")
    assert shown.content["subject"] == "[alpha/red] 1"
