"""Workflows from the command line: a definition is JSON (``--args``), checked like the API's."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from dispatcher.cli.main import main
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import Workflow

pytestmark = pytest.mark.usefixtures("postgres_url")

EMAIL = {"kind": "email", "template": {"subject": "{{ digest.key }}", "body": "b"}}


def create(organisation: str, config: dict[str, object]) -> tuple[int, str]:
    definition = {"key": "daily", "name": "Daily",
                  "steps": [{"kind": "digest", "config": config}, EMAIL]}  # fmt: skip
    outcome = CliRunner().invoke(
        main,
        ["action", "create_workflow", "--org", organisation, "--local",
         "--args", json.dumps(definition)],
    )  # fmt: skip
    return outcome.exit_code, outcome.output


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"cron": "0 25 * * *"}, "steps.0.config.cron: the hour field is not valid"),
        ({"cron": "0 9 * * *", "timezone": "Europe/Nowhere"},
         "steps.0.config.timezone: not an IANA time zone name"),
        ({"window_seconds": 60, "key": "{{ payload.p"},
         "steps.0.config.key: template syntax error on line 1"),
        ({"key": "{{ payload.p }}"}, "steps.0.config.window_seconds: a digest needs"),
    ],
)  # fmt: skip
def test_a_bad_digest_step_is_a_one_line_error_naming_the_option(
    config: dict[str, object], named: str
) -> None:
    organisation = str(create_organisation(f"cli {uuid.uuid4().hex[:6]}"))
    code, output = create(organisation, config)
    assert code != 0 and named in output, output
    assert "Traceback" not in output


def test_a_keyed_cron_digest_is_created() -> None:
    organisation = create_organisation(f"cli {uuid.uuid4().hex[:6]}")
    config = {"key": "{{ payload.project }}", "cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
    code, output = create(str(organisation), config)
    assert code == 0, output
    with database().session() as session:
        stored = session.scalars(
            select(Workflow).where(Workflow.organisation_id == organisation)
        ).one()
        assert [step.config for step in stored.steps] == [config, {}]
