"""Listings and statuses: tables whole when piped, ``--json`` for programs, types in words."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner, Result

from dispatcher import run_action, trigger
from dispatcher.cli.main import main
from dispatcher.organisations import create_organisation
from tests.dispatcher.support import created_id

SECRET = "SECRET-listing-key-1"
#: Longer than any 80-column table leaves room for.
LONG = "a-name-long-enough-that-an-eighty-column-table-would-have-to-cut-or-fold-it-" * 2


def cli(*arguments: str) -> Result:
    outcome = CliRunner(env={"COLUMNS": "80"}).invoke(main, list(arguments))
    assert outcome.exit_code == 0, outcome.output
    return outcome


def test_action_list_prints_argument_types_in_words() -> None:
    rows = [line.split("│") for line in cli("action", "--list").output.splitlines()]
    lines = {cells[2].strip() for cells in rows if len(cells) == 5}
    for expected in (
        "prompt: text (optional)",
        "kind: system_agent | user_agent",
        "created_by: id of users (optional)",
        "delegates_to: list of ids of agents (optional)",
        "steps: list of step",
        "priority: integer (optional)",
        "email: email address (optional)",
        "tool_call: any JSON (optional)",
        "as: seen | read | unread | archived | unarchived",
    ):
        assert expected in lines, expected
    assert not [line for line in lines if "Optional" in line or "Annotated" in line]


def test_action_list_json_describes_every_argument() -> None:
    entries = {
        entry["name"]: entry for entry in json.loads(cli("action", "--list", "--json").output)
    }
    assert {"name": "steps", "type": "list of step", "required": True} in entries[
        "create_workflow"
    ]["arguments"]
    assert entries["create_agent"]["description"].startswith("Create an agent")


@pytest.mark.usefixtures("redis_url")
def test_orgs_status_and_integrations_print_whole_rows_and_json(
    organisation_id: uuid.UUID,
) -> None:
    named = create_organisation(LONG)
    listed = cli("orgs", "list")
    assert any(LONG in line and str(named) in line for line in listed.output.splitlines())
    organisations = json.loads(cli("orgs", "list", "--json").output)
    assert {"id": str(named), "name": LONG} in [
        {"id": item["id"], "name": item["name"]} for item in organisations
    ]

    org = str(organisation_id)
    arguments = {"name": LONG, "provider": "fake", "credentials": {"api_key": SECRET}}
    integration = created_id(run_action("create_integration", arguments, organisation_id=org))
    table = cli("integrations", "list", "--org", org).output
    assert any(LONG in line and str(integration) in line for line in table.splitlines())
    rows = json.loads(cli("integrations", "list", "--org", org, "--json").output)
    assert rows == [
        {
            "id": str(integration), "name": LONG, "provider": "fake", "channel": "email",
            "environment": "production", "status": "active", "is_primary": False, "priority": 0,
        }
    ]  # fmt: skip

    step = {"kind": "email", "template": {"subject": "s", "body": "b"}}
    run_action("create_workflow", {"key": "w", "name": "w", "steps": [step]}, organisation_id=org)
    run_action("create_subscriber", {"external_id": LONG[:150], "email": "a@example.com"},
               organisation_id=org)  # fmt: skip
    receipt = trigger(org, "w", to=[LONG[:150]], transaction_id="listing-1")
    status = cli("status", receipt.transaction_id, "--org", org).output
    assert any(LONG[:150] in line for line in status.splitlines())
    [view] = json.loads(cli("status", receipt.transaction_id, "--org", org, "--json").output)
    assert (view["subscriber"], view["channel"], view["step"]) == (LONG[:150], "email", 0)
    assert view["status"] in {"queued", "sending", "sent", "retrying", "failed"}
    assert SECRET not in table + json.dumps(rows) + status + json.dumps(view)
