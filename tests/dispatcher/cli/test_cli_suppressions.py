"""``dispatcher suppressions list|lift``: one organisation's suppressions, lifted by id."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from sqlalchemy import insert

from dispatcher.cli.main import main
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import ChannelType, Suppression
from models.types import utcnow


def suppress(organisation_id: uuid.UUID, channel: ChannelType, address: str) -> uuid.UUID:
    row_id = uuid.uuid4()
    with database().transaction() as session:
        session.execute(insert(Suppression).values(
            id=row_id, organisation_id=organisation_id, channel_type=channel, address=address,
            reason="bounced (hard)", meta={}, created_at=utcnow()))  # fmt: skip
    return row_id


def test_list_filters_and_lift_removes_only_the_organisations_own(postgres_url: str) -> None:
    own, other = create_organisation("Own"), create_organisation("Other")
    email = suppress(own, ChannelType.EMAIL, "ada@example.com")
    suppress(own, ChannelType.SMS, "+15550100")
    foreign = suppress(other, ChannelType.EMAIL, "ada@example.com")
    runner = CliRunner()

    def listed(*options: str) -> list[dict[str, str]]:
        outcome = runner.invoke(main, ["suppressions", "list", "--org", str(own), "--json",
                                       *options])  # fmt: skip
        assert outcome.exit_code == 0, outcome.output
        return list(json.loads(outcome.output))

    assert {item["address"] for item in listed()} == {"ada@example.com", "+15550100"}
    assert [item["id"] for item in listed("--address", "ADA@example.com")] == [str(email)]
    assert [item["channel"] for item in listed("--channel", "sms")] == ["sms"]
    table = runner.invoke(main, ["suppressions", "list", "--org", str(own)])
    assert "ada@example.com" in table.output
    refused = runner.invoke(main, ["suppressions", "lift", str(foreign), "--org", str(own)])
    assert refused.exit_code != 0
    assert "no suppression" in refused.output
    lifted = runner.invoke(main, ["suppressions", "lift", str(email), "--org", str(own)])
    assert lifted.exit_code == 0, lifted.output
    assert [item["address"] for item in listed()] == ["+15550100"]
