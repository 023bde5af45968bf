"""Key rotation on real PostgreSQL: every credential moves to the newest key, safely.

Rotation rewrites the whole integrations table, so these tests run on a database of their own
(built by the migrations beside the suite's one): the rest of the suite and its worker process
keep the suite's key and never see a row under the keys used here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from dispatcher import ConfigurationError, Ok, create_organisation, run_action
from dispatcher.cli.keys import rotate
from dispatcher.config import Settings, reset_settings
from dispatcher.lifecycle.webhooks import create as create_endpoint
from dispatcher.runtime.keys import configure_key_ring, rotate_credentials
from dispatcher.runtime.resources import database, reset
from models import Integration, KeyRing, KeyRingError, WebhookEndpoint, credential_keys
from models.migrate import upgrade
from tests.conftest import POSTGRES_ADMIN_URL, POSTGRES_TEST_DATABASE, TEST_KEY


class RotationInterruptedError(Exception):
    pass


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


@pytest.fixture(scope="module")
def rotation_database(postgres_url: str) -> Iterator[str]:
    name = f"{POSTGRES_TEST_DATABASE}_keys"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{postgres_url.rpartition('/')[0]}/{name}"
    upgrade(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISPATCHER_DATABASE_URL", url)
        reset_settings()
        reset()
        yield url
        reset()
    reset_settings()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def suite_key_restored() -> Iterator[None]:
    yield
    credential_keys.configure([TEST_KEY])


@pytest.fixture
def organisation(rotation_database: str) -> uuid.UUID:
    with database().engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM integrations"))
        connection.execute(sa.text("DELETE FROM webhook_endpoints"))
    return create_organisation(f"Rotation {uuid.uuid4().hex[:6]}")


def store(organisation: uuid.UUID, count: int, key: str) -> dict[uuid.UUID, dict[str, Any]]:
    """``count`` integrations whose credentials are encrypted under ``key`` alone."""
    credential_keys.configure([key])
    stored: dict[uuid.UUID, dict[str, Any]] = {}
    for number in range(count):
        credentials = {"api_key": f"SECRET-{number}-{uuid.uuid4().hex}"}
        result = run_action(
            "create_integration",
            {"name": f"Mail {number}", "provider": "fake", "credentials": credentials},
            organisation_id=organisation,
        )
        assert isinstance(result, Ok), result
        stored[uuid.UUID(result.value)] = credentials
    return stored


def raw_tokens() -> dict[uuid.UUID, str]:
    with database().engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, credentials FROM integrations"))
        return {row.id: row.credentials for row in rows}


def decrypted() -> dict[uuid.UUID, dict[str, Any]]:
    """Every credential read through the model, with whatever ring is configured now."""
    with database().session() as session:
        return {row.id: row.credentials for row in session.scalars(sa.select(Integration))}


def opens_with(key: str, token: str) -> bool:
    ring = KeyRing()
    ring.configure([key])
    try:
        ring.decrypt(token)
    except KeyRingError:
        return False
    return True


def test_rotation_moves_every_credential_to_the_newest_key(organisation: uuid.UUID) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 5, key_a)
    before = raw_tokens()
    with database().engine.connect() as connection:
        updated_before: dict[uuid.UUID, datetime] = dict(
            connection.execute(sa.text("SELECT id, updated_at FROM integrations")).all()
        )
    started = datetime.now().astimezone()

    credential_keys.configure([key_b, key_a])
    assert rotate_credentials(database(), batch_size=2) == 5

    after = raw_tokens()
    assert after.keys() == before.keys()
    for integration_id, token in after.items():
        assert token != before[integration_id]
        assert opens_with(key_b, token)
        assert not opens_with(key_a, token)
        assert "SECRET" not in token
    credential_keys.configure([key_b])
    assert decrypted() == stored
    with database().session() as session:
        for row in session.scalars(sa.select(Integration)):
            assert row.credentials_rotated_at is not None
            assert row.credentials_rotated_at >= started
            assert row.updated_at == updated_before[row.id]


def test_rotation_moves_webhook_endpoint_secrets_too(organisation: uuid.UUID) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 2, key_a)
    view, secret = create_endpoint(
        organisation, url="http://127.0.0.1:9/hooks", event_types=["message.sent"]
    )
    with database().engine.connect() as connection:
        before = connection.execute(
            sa.text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": view.id}
        ).scalar_one()
    assert opens_with(key_a, before) and secret not in before

    credential_keys.configure([key_b, key_a])
    assert rotate_credentials(database(), batch_size=1) == 3

    with database().engine.connect() as connection:
        after = connection.execute(
            sa.text("SELECT secret FROM webhook_endpoints WHERE id = :id"), {"id": view.id}
        ).scalar_one()
    assert opens_with(key_b, after) and not opens_with(key_a, after)
    credential_keys.configure([key_b])
    assert decrypted() == stored
    with database().session() as session:
        endpoint = session.get(WebhookEndpoint, view.id)
        assert endpoint is not None
        assert endpoint.secret == {"signing_secret": secret}


def test_rotating_twice_is_harmless(organisation: uuid.UUID) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 3, key_a)
    credential_keys.configure([key_b, key_a])
    assert rotate_credentials(database()) == 3
    first = raw_tokens()
    assert rotate_credentials(database(), batch_size=1) == 3
    second = raw_tokens()
    assert all(opens_with(key_b, token) for token in second.values())
    assert second.keys() == first.keys()
    credential_keys.configure([key_b])
    assert decrypted() == stored


def test_an_interrupted_rotation_still_decrypts_and_a_rerun_completes_it(
    organisation: uuid.UUID,
) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 4, key_a)
    credential_keys.configure([key_b, key_a])
    calls: list[tuple[int, int]] = []

    def stop_after_first_batch(examined: int, total: int) -> None:
        calls.append((examined, total))
        raise RotationInterruptedError

    with pytest.raises(RotationInterruptedError):
        rotate_credentials(database(), batch_size=1, progress=stop_after_first_batch)
    assert calls == [(1, 4)]

    tokens = raw_tokens()
    under_b = {i for i, token in tokens.items() if opens_with(key_b, token)}
    under_a = {i for i, token in tokens.items() if opens_with(key_a, token)}
    assert len(under_b) == 1
    assert under_a == set(tokens) - under_b
    assert min(tokens) in under_b  # batches walk the ids in order
    assert decrypted() == stored  # ring [B, A] reads the mix

    seen: list[tuple[int, int]] = []
    assert rotate_credentials(database(), batch_size=3, progress=lambda *p: seen.append(p)) == 4
    assert seen == [(3, 4), (4, 4)]
    assert all(opens_with(key_b, token) for token in raw_tokens().values())
    credential_keys.configure([key_b])
    assert decrypted() == stored


def test_a_concurrent_update_is_never_overwritten(
    organisation: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 2, key_a)
    credential_keys.configure([key_b, key_a])
    target = min(stored)
    replaced = {"api_key": "SECRET-written-by-a-worker-meanwhile"}
    real_rotate = credential_keys.rotate

    def rotate_while_a_worker_writes(token: str) -> str:
        if raw_tokens()[target] == token:
            # A worker changes the row after rotation read it and before it writes back.
            result = run_action(
                "update_integration",
                {"integration_id": str(target), "credentials": replaced},
                organisation_id=organisation,
            )
            assert isinstance(result, Ok), result
        return real_rotate(token)

    monkeypatch.setattr(credential_keys, "rotate", rotate_while_a_worker_writes)
    assert rotate_credentials(database()) == 1
    monkeypatch.undo()

    credential_keys.configure([key_b])
    assert decrypted() == {**stored, target: replaced}


def test_readers_keep_reading_during_rotation(organisation: uuid.UUID) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 20, key_a)
    credential_keys.configure([key_b, key_a])
    stop = threading.Event()
    reads: list[int] = []
    errors: list[BaseException] = []

    def read_until_stopped() -> None:
        while not stop.is_set():
            try:
                assert decrypted() == stored
            except BaseException as exc:  # reported to the test thread
                errors.append(exc)
                return
            reads.append(1)

    reader = threading.Thread(target=read_until_stopped)
    reader.start()
    try:
        assert rotate_credentials(database(), batch_size=1) == 20
    finally:
        stop.set()
        reader.join(timeout=30)
    assert errors == []
    assert reads


def test_a_credential_no_key_opens_stops_rotation_naming_the_row(
    organisation: uuid.UUID,
) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 1, key_a)
    credential_keys.configure([key_b])
    with pytest.raises(KeyRingError) as caught:
        rotate_credentials(database())
    message = str(caught.value)
    assert str(next(iter(stored))) in message
    assert "SECRET" not in message
    credential_keys.configure([key_a])
    assert decrypted() == stored


def test_the_rotate_command_reports_the_count(organisation: uuid.UUID) -> None:
    key_a, key_b = new_key(), new_key()
    stored = store(organisation, 3, key_a)
    credential_keys.configure([key_b, key_a])
    outcome = CliRunner().invoke(rotate, ["--batch-size", "2"])
    assert outcome.exit_code == 0, outcome.output
    assert "re-encrypted 3 credential(s)" in outcome.output
    credential_keys.configure([key_b])
    assert decrypted() == stored


def test_the_rotate_command_fails_cleanly_on_an_unreadable_credential(
    organisation: uuid.UUID,
) -> None:
    store(organisation, 1, new_key())
    credential_keys.configure([new_key()])
    outcome = CliRunner().invoke(rotate, [])
    assert outcome.exit_code == 1
    assert "cannot be decrypted" in outcome.output
    assert "Traceback" not in outcome.output


def test_a_malformed_key_is_a_configuration_error_naming_the_variable() -> None:
    settings = Settings(
        database_url="postgresql://db.invalid/dispatcher",
        encryption_keys=[TEST_KEY, "not-a-fernet-key"],
    )
    with pytest.raises(ConfigurationError) as caught:
        configure_key_ring(settings)
    message = str(caught.value)
    assert message.startswith("DISPATCHER_ENCRYPTION_KEYS")
    assert "#2" in message
    assert "not-a-fernet-key" not in message
    assert TEST_KEY not in message
    # The ring configured before is untouched by the failed attempt.
    assert credential_keys.decrypt(credential_keys.encrypt(b"x")) == b"x"


def test_start_up_with_a_malformed_key_stops_with_a_clear_error() -> None:
    environment = {**os.environ, "DISPATCHER_ENCRYPTION_KEYS": "short,garbage"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dispatcher.runtime.resources import ensure_ready; ensure_ready()",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "ConfigurationError: DISPATCHER_ENCRYPTION_KEYS: encryption key #1" in done.stderr
    assert "garbage" not in done.stderr
