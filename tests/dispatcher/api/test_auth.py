"""API keys: Novu's scheme or Bearer; anything else is the same 401 in Novu's error shape."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dispatcher.api.auth import LastUsed, presented_key
from dispatcher.api.keys import create_key, digest, list_keys, revoke_key
from dispatcher.organisations import create_organisation
from dispatcher.runtime.resources import database
from models import ApiKey
from models.types import utcnow
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.support import fetch

CANCEL = "/v1/events/trigger/some-transaction"


def assert_novu_error(body: dict[str, object], status: int, path: str) -> None:
    assert body["statusCode"] == status
    assert body["path"] == path
    assert isinstance(body["timestamp"], str) and body["timestamp"].endswith("Z")
    assert isinstance(body["message"], str) and body["message"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "ApiKey",
        "Basic dXNlcjpwYXNz",
        "ApiKey nv_unknownkeyunknownkeyunknownkeyunknownkey",
        "ApiKey two words",
    ],
)
def test_missing_malformed_or_unknown_keys_are_refused_alike(
    client: TestClient, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    answer = client.delete(CANCEL, headers=headers)
    assert answer.status_code == 401
    assert_novu_error(answer.json(), 401, CANCEL)
    assert answer.json()["message"] == "API key missing, malformed, revoked or unknown"


def test_apikey_and_bearer_schemes_are_accepted(client: TestClient, keyed: Keyed) -> None:
    for scheme in ("ApiKey", "Bearer", "apikey"):
        answer = client.delete(CANCEL, headers={"Authorization": f"{scheme} {keyed.key}"})
        assert answer.status_code == 200, answer.text
        assert answer.json() is False


def test_a_revoked_key_is_refused(client: TestClient, keyed: Keyed) -> None:
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 200
    [view] = list_keys(keyed.organisation_id)
    assert revoke_key(keyed.organisation_id, view.prefix) == 1
    answer = client.delete(CANCEL, headers=keyed.headers)
    assert answer.status_code == 401
    assert keyed.key not in answer.text


def test_only_the_digest_and_a_prefix_are_stored(organisation_id: uuid.UUID) -> None:
    issued = create_key(organisation_id, "ci")
    row = fetch(ApiKey, issued.id)
    assert row.digest == digest(issued.key) != issued.key
    assert row.prefix == issued.key[:10] and len(issued.key) >= 40
    assert issued.key not in repr(row.__dict__.values())


def test_revoking_needs_the_keys_own_organisation(organisation_id: uuid.UUID) -> None:
    issued = create_key(organisation_id, "ci")
    other = create_organisation(f"Other {uuid.uuid4().hex[:6]}")
    assert revoke_key(other, issued.prefix) == 0
    assert revoke_key(other, str(issued.id)) == 0
    assert fetch(ApiKey, issued.id).revoked_at is None
    assert revoke_key(organisation_id, str(issued.id)) == 1


def test_last_used_is_written_once_per_resolution(client: TestClient, keyed: Keyed) -> None:
    [before] = list_keys(keyed.organisation_id)
    assert before.last_used_at is None
    client.delete(CANCEL, headers=keyed.headers)
    [first] = list_keys(keyed.organisation_id)
    assert first.last_used_at is not None
    client.delete(CANCEL, headers=keyed.headers)
    [second] = list_keys(keyed.organisation_id)
    assert second.last_used_at == first.last_used_at


def test_last_used_due_once_per_key_within_the_resolution() -> None:
    recorder = LastUsed(resolution=3600)
    first, second = uuid.uuid4(), uuid.uuid4()
    assert recorder.due(first)
    assert not recorder.due(first)
    assert recorder.due(second)
    assert LastUsed(resolution=0).due(first)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("ApiKey abc", "abc"),
        ("Bearer abc", "abc"),
        ("  bearer   abc  ", "abc"),
        ("Token abc", None),
        ("ApiKey " + "x" * 201, None),
    ],
)
def test_presented_key(header: str, key: str | None) -> None:
    assert presented_key(header) == key


def _revoke_elsewhere(key_id: uuid.UUID) -> None:
    """A revocation by another process: the row changes, this process's memory does not."""
    with database().transaction() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))


def test_a_key_revoked_elsewhere_is_refused_once_its_cache_time_is_over(
    settings_env: Callable[..., None], client: TestClient, keyed: Keyed
) -> None:
    settings_env(api_key_cache_seconds=300)
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 200
    [view] = list_keys(keyed.organisation_id)
    _revoke_elsewhere(view.id)
    # Within the cache time this process still trusts what it looked up...
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 200
    # ...and looks the key up again once the time is over.
    settings_env(api_key_cache_seconds=0.000001)
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 401


def test_without_a_cache_time_every_request_looks_the_key_up(
    settings_env: Callable[..., None], client: TestClient, keyed: Keyed
) -> None:
    settings_env(api_key_cache_seconds=0)
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 200
    [view] = list_keys(keyed.organisation_id)
    _revoke_elsewhere(view.id)
    assert client.delete(CANCEL, headers=keyed.headers).status_code == 401
