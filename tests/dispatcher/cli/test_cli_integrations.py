"""``dispatcher integrations``: the commands on a real worker and database, checks against a
local server."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import respx
from click.testing import CliRunner, Result

from dispatcher import run_action, trigger
from dispatcher.cli.integrations import integrations
from dispatcher.notifications.status import transaction_status
from dispatcher.organisations import create_organisation
from dispatcher.runtime.http_client import SharedAsyncClient
from dispatcher.runtime.resources import database, ensure_ready
from dispatcher.sending.check import CHECK_TIMEOUT, check_runtime
from models import Integration, IntegrationStatus
from tests.conftest import free_port
from tests.dispatcher.support import created_id, fetch
from tests.security.support import Route, ScriptedServer, act, email_step, parked, send_parked

SECRET = "SECRET-cli-key-123"
CHECK_URL = "https://fake-provider.test/v1/messages"


def cli(*arguments: str, input_text: str | None = None) -> Result:
    return CliRunner().invoke(integrations, list(arguments), input=input_text)


def fake_http(
    organisation_id: uuid.UUID, name: str = "Fake mail", url: str = CHECK_URL
) -> uuid.UUID:
    """A fake_http integration made in-process, for the commands that read the database."""
    arguments = {
        "name": name,
        "provider": "fake_http",
        "credentials": {"api_key": SECRET},
        "settings": {"url": url},
    }
    return created_id(run_action("create_integration", arguments, organisation_id=organisation_id))


@pytest.mark.usefixtures("worker")
def test_add_stores_the_integration_through_the_worker(
    organisation_id: uuid.UUID, tmp_path: Path
) -> None:
    credentials_file = tmp_path / "credentials.json"
    credentials_file.write_text(json.dumps({"api_key": SECRET}))
    outcome = cli(
        "add", "--org", str(organisation_id), "--provider", "fake_http", "--name", "Mail",
        "--credentials-file", str(credentials_file), "--settings", json.dumps({"url": CHECK_URL}),
        "--channel", "sms", "--primary", "--priority", "7", "--environment", "staging",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    row = fetch(Integration, uuid.UUID(outcome.output.strip()))
    assert (row.organisation_id, row.provider, row.name, row.channel_type.value) == (
        organisation_id,
        "fake_http",
        "Mail",
        "sms",
    )
    assert (row.environment, row.is_primary, row.priority) == ("staging", True, 7)
    assert row.credentials == {"api_key": SECRET}
    assert row.settings == {"url": CHECK_URL}

    from_stdin = cli(
        "add", "--org", str(organisation_id), "--provider", "fake", "--name", "Inline",
        "--credentials-file", "-", input_text=json.dumps({"api_key": SECRET}),
    )  # fmt: skip
    assert from_stdin.exit_code == 0, from_stdin.output
    assert fetch(Integration, uuid.UUID(from_stdin.output.strip())).channel_type.value == "email"


@pytest.mark.usefixtures("worker")
def test_add_refuses_credentials_that_do_not_fit_naming_the_field(
    organisation_id: uuid.UUID,
) -> None:
    base = ["add", "--org", str(organisation_id), "--provider", "twilio", "--name", "Texts"]
    settings = ["--settings", json.dumps({"from_number": "+15005550006"})]
    wrong = json.dumps({"account_sid": "AC" + "0" * 32, "token": SECRET})
    outcome = cli(*base, *settings, "--credentials", wrong)
    assert outcome.exit_code == 1
    assert "credentials" in outcome.output
    assert "auth_token: Field required" in outcome.output
    assert "token: Extra inputs are not permitted" in outcome.output
    assert SECRET not in outcome.output

    bad_sid = json.dumps({"account_sid": SECRET, "auth_token": SECRET})
    outcome = cli(*base, *settings, "--credentials", bad_sid)
    assert outcome.exit_code == 1
    assert "account_sid" in outcome.output and SECRET not in outcome.output

    not_json = cli(*base, "--credentials", '{"auth_token": "' + SECRET)
    assert not_json.exit_code == 1
    assert "--credentials is not valid JSON" in not_json.output and SECRET not in not_json.output

    unknown = cli("add", "--org", str(organisation_id), "--provider", "nope", "--name", "x")
    assert unknown.exit_code == 1 and "unknown provider 'nope'" in unknown.output


def test_list_shows_the_organisations_integrations_without_secrets(
    organisation_id: uuid.UUID,
) -> None:
    mail = fake_http(organisation_id, "Mail")
    chat = fake_http(organisation_id, "[bold]Chat")
    other = fake_http(create_organisation("Elsewhere"), "Not ours")
    # Piped output keeps every cell whole, even where the terminal would be narrow.
    for columns in ("200", "60"):
        outcome = CliRunner(env={"COLUMNS": columns}).invoke(
            integrations, ["list", "--org", str(organisation_id)]
        )
        assert outcome.exit_code == 0, outcome.output
        for row_id, name in ((mail, "Mail"), (chat, "[bold]Chat")):
            line = next(line for line in outcome.output.splitlines() if str(row_id) in line)
            assert [cell.strip() for cell in line.strip("│ ").split("│")] == [
                str(row_id), name, "fake_http", "email", "production", "active", "", "0",
            ]  # fmt: skip
        assert str(other) not in outcome.output and "Not ours" not in outcome.output
        assert SECRET not in outcome.output and CHECK_URL not in outcome.output

    missing = cli("list", "--org", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no organisation" in missing.output


def send_one_email(organisation_id: uuid.UUID) -> tuple[str, str | None]:
    """Send one email through the organisation's only integration, in this process: its
    status and last error."""
    act(organisation_id, "create_subscriber", {"external_id": "ada", "email": "ada@example.com"})
    act(
        organisation_id, "create_workflow", {"key": "w", "name": "w", "steps": parked(email_step())}
    )
    trigger(organisation_id, "w", "ada", {"code": "1"}, transaction_id="tx-guard")
    send_parked(organisation_id)
    [view] = transaction_status(organisation_id, "tx-guard")
    return view.status, view.last_error


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer().running() as running:
        yield running


def checked_at(organisation_id: uuid.UUID, url: str) -> Result:
    return cli("test", str(fake_http(organisation_id, url=url)), "--org", str(organisation_id))


def test_test_reports_ok_when_the_provider_accepts(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    outcome = checked_at(organisation_id, server.route("/check", Route(200, '{"ok": true}')))
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip() == "ok: HTTP 200"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", "/check")
    headers = {name.lower(): value for name, value in seen.headers.items()}
    assert headers["authorization"] == f"Bearer {SECRET}"


def test_test_reports_not_ok_on_401(server: ScriptedServer, organisation_id: uuid.UUID) -> None:
    url = server.route("/check", Route(401, '{"error": "unauthorized"}'))
    outcome = checked_at(organisation_id, url)
    assert outcome.exit_code == 1
    assert "not ok: fake_http: HTTP 401" in outcome.output
    assert "unauthorized" in outcome.output
    assert SECRET not in outcome.output


def test_test_masks_credentials_a_provider_echoes_in_derived_forms(
    server: ScriptedServer, organisation_id: uuid.UUID
) -> None:
    # Mailgun, Mailjet, Twilio and Plivo authenticate with HTTP Basic; an API that echoes the
    # request shows the credentials base64-encoded, which no literal replacement finds.
    basic = base64.b64encode(f"api:{SECRET}".encode()).decode()
    echoed = json.dumps(
        {
            "error": "unauthorized",
            "request": {
                "Authorization": f"Basic {basic}",
                "url": f"https://api.example/v1?token={quote(SECRET)}",
                "auth": f"Bearer {SECRET}",
            },
        }
    )
    outcome = checked_at(organisation_id, server.route("/check", Route(401, echoed)))
    assert outcome.exit_code == 1
    assert "not ok: fake_http: HTTP 401" in outcome.output
    assert basic not in outcome.output
    assert SECRET not in outcome.output
    assert quote(SECRET) not in outcome.output


def test_test_names_the_class_of_a_provider_error(organisation_id: uuid.UUID) -> None:
    outcome = checked_at(organisation_id, f"http://127.0.0.1:{free_port()}/check")
    assert outcome.exit_code == 1
    assert "not ok: RetryableError: fake_http: " in outcome.output


def test_test_calls_through_the_worker_client_with_short_timeouts() -> None:
    client = check_runtime().client()
    assert isinstance(client, SharedAsyncClient)
    assert client.timeout.connect is not None and client.timeout.connect <= 5
    assert client.timeout.read is not None and client.timeout.read <= CHECK_TIMEOUT


def test_test_refuses_a_private_destination_outside_the_allowlist_as_sending_does(
    organisation_id: uuid.UUID, settings_env: Callable[..., None]
) -> None:
    # 127.0.0.2 is loopback, and the suite's allow-list names 127.0.0.1 only.
    with ScriptedServer(host="127.0.0.2").running() as outside:
        url = outside.route("/check", Route(200, '{"ok": true}'))
        row_id = fake_http(organisation_id, url=url)
        outcome = cli("test", str(row_id), "--org", str(organisation_id))
        assert outcome.exit_code == 1
        assert (
            "not ok: settings.url refused: host '127.0.0.2' is a loopback address" in outcome.output
        )
        assert outside.seen == []
        # The very reason a send through it records.
        sent = send_one_email(organisation_id)
        assert sent == ("failed", "fake_http: settings.url refused: host '127.0.0.2' is a "
                        "loopback address")  # fmt: skip
        assert outside.seen == []

        settings_env(url_allowlist="127.0.0.1,127.0.0.2")
        allowed = cli("test", str(row_id), "--org", str(organisation_id))
        assert allowed.exit_code == 0, allowed.output
        assert allowed.output.strip() == "ok: HTTP 200"
        assert [seen.path for seen in outside.seen] == ["/check"]


def test_test_validates_stored_values_and_scopes_by_organisation(
    organisation_id: uuid.UUID,
) -> None:
    ensure_ready()
    with database().transaction() as session:
        # Written around the action's validation: what an older schema could have stored.
        broken = Integration(
            organisation_id=organisation_id,
            name="Broken",
            provider="fake_http",
            channel_type="email",
            credentials={"api_key": SECRET},
            settings={"endpoint": CHECK_URL},
        )
        session.add(broken)
        session.flush()
        broken_id = broken.id
    with respx.mock(assert_all_mocked=True) as router:
        outcome = cli("test", str(broken_id), "--org", str(organisation_id))
        assert outcome.exit_code == 1
        assert "stored settings do not fit provider 'fake_http'" in outcome.output
        assert "url: Field required" in outcome.output
        assert "endpoint: Extra inputs are not permitted" in outcome.output

        elsewhere = cli("test", str(fake_http(organisation_id)), "--org", str(uuid.uuid4()))
        assert elsewhere.exit_code == 1 and "no integration" in elsewhere.output
        assert not router.calls


def test_test_without_a_provider_check_only_validates(organisation_id: uuid.UUID) -> None:
    arguments = {"name": "Hook", "provider": "webhook", "credentials": {"signing_secret": SECRET}}
    row_id = created_id(
        run_action("create_integration", arguments, organisation_id=organisation_id)
    )
    with respx.mock(assert_all_mocked=True) as router:
        outcome = cli("test", str(row_id), "--org", str(organisation_id))
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.startswith("ok: credentials and settings are valid")
    assert not router.calls


@pytest.mark.usefixtures("worker")
def test_set_primary_and_deactivate_through_the_worker(organisation_id: uuid.UUID) -> None:
    first, second = fake_http(organisation_id, "First"), fake_http(organisation_id, "Second")
    org = ["--org", str(organisation_id)]
    assert cli("set-primary", str(second), *org).exit_code == 0
    assert cli("set-primary", str(first), *org).output.strip() == f"{first} is primary"
    assert fetch(Integration, first).is_primary
    assert not fetch(Integration, second).is_primary

    outcome = cli("deactivate", str(first), *org)
    assert outcome.exit_code == 0 and outcome.output.strip() == f"{first} is inactive"
    row = fetch(Integration, first)
    assert row.status is IntegrationStatus.INACTIVE and not row.is_primary

    refused = cli("set-primary", str(first), *org)
    assert refused.exit_code == 1 and "inactive" in refused.output

    foreign = cli("deactivate", str(second), "--org", str(create_organisation("Other")))
    assert foreign.exit_code == 1 and "not_found" in foreign.output
    assert fetch(Integration, second).status is IntegrationStatus.ACTIVE
