"""``dispatcher inbox-secret rotate`` and ``dispatcher inbox-origins``: the secret printed once
and usable at once, the previous one kept for the overlap, the origins set."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner

from dispatcher.api.inbox.secrets import keys_for_organisation
from dispatcher.api.inbox.sessions import subscriber_hash, verified_subscriber
from dispatcher.cli.main import main


def run(*arguments: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(main, list(arguments))
    return outcome.exit_code, outcome.output


def test_rotate_prints_the_secret_once_and_keeps_the_previous_for_the_overlap(
    organisation_id: uuid.UUID,
) -> None:
    org = str(organisation_id)
    code, output = run("inbox-secret", "rotate", "--org", org, "--json")
    assert code == 0, output
    first = json.loads(output)
    assert first["application_identifier"].startswith("app_")
    assert first["previous_valid_until"] is None
    code, output = run("inbox-secret", "rotate", "--org", org, "--overlap-minutes", "10", "--json")
    second = json.loads(output)
    assert second["application_identifier"] == first["application_identifier"]
    assert second["previous_valid_until"] is not None
    keys = keys_for_organisation(organisation_id)
    assert keys is not None
    assert first["secret"] not in repr(keys) and second["secret"] not in repr(keys)
    for secret in (first["secret"], second["secret"]):
        proof = subscriber_hash("ada", secret.encode())
        assert verified_subscriber(keys, "ada", proof) == "ada"


def test_origins_are_set_and_bad_ones_refused(organisation_id: uuid.UUID) -> None:
    org = str(organisation_id)
    code, output = run("inbox-origins", "--org", org, "https://app.example.com")
    assert code != 0 and "inbox-secret rotate" in output
    run("inbox-secret", "rotate", "--org", org)
    code, output = run("inbox-origins", "--org", org, "https://app.example.com/", "http://x:8080")
    assert (code, output.strip()) == (0, "https://app.example.com, http://x:8080")
    code, output = run("inbox-origins", "--org", org, "app.example.com/path")
    assert code != 0 and "origins" in output
    code, output = run("inbox-secret", "rotate", "--org", str(uuid.uuid4()))
    assert code != 0 and "no organisation" in output
