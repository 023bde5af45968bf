"""``dispatcher webhook-endpoints list|create|delete``: one organisation's endpoints."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from dispatcher.cli.main import main
from dispatcher.organisations import create_organisation

URL = "http://127.0.0.1:9/hooks"


def test_create_list_delete_within_the_organisation(postgres_url: str) -> None:
    own, other = create_organisation("Own"), create_organisation("Other")
    runner = CliRunner()

    def listed(org: object) -> list[dict[str, Any]]:
        outcome = runner.invoke(main, ["webhook-endpoints", "list", "--org", str(org), "--json"])
        assert outcome.exit_code == 0, outcome.output
        return list(json.loads(outcome.output))

    made = runner.invoke(main, [
        "webhook-endpoints", "create", "--org", str(own), "--url", URL,
        "--event", "message.sent", "--event", "message.delivered", "--json",
    ])  # fmt: skip
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["message.sent", "message.delivered"]
    shown = listed(own)
    assert [item["id"] for item in shown] == [created["id"]]
    assert created["secret"] not in json.dumps(shown)
    assert listed(other) == []
    table = runner.invoke(main, ["webhook-endpoints", "list", "--org", str(own)])
    assert URL in table.output and created["secret"] not in table.output

    refused = runner.invoke(
        main, ["webhook-endpoints", "delete", created["id"], "--org", str(other)]
    )
    assert refused.exit_code != 0 and "no webhook endpoint" in refused.output
    deleted = runner.invoke(main, ["webhook-endpoints", "delete", created["id"], "--org", str(own)])
    assert deleted.exit_code == 0, deleted.output
    assert listed(own) == []


def test_a_refused_url_or_unknown_event_names_the_option(postgres_url: str) -> None:
    org = create_organisation("Refused")
    runner = CliRunner()
    private = runner.invoke(main, [
        "webhook-endpoints", "create", "--org", str(org), "--url", "http://10.0.0.1/x",
        "--event", "message.sent",
    ])  # fmt: skip
    assert private.exit_code != 0 and "--url" in private.output and "URL guard" in private.output
    unknown = runner.invoke(main, [
        "webhook-endpoints", "create", "--org", str(org), "--url", URL, "--event", "message.lost",
    ])  # fmt: skip
    assert unknown.exit_code != 0 and "--event" in unknown.output
