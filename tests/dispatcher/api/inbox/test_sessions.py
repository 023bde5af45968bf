"""Subscriber sessions: the hash or the application's JWT, secret rotation with its overlap,
the token's reach (one subscriber's inbox, never the organisation's API), and CORS."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
from fastapi.testclient import TestClient

from dispatcher.api.inbox.secrets import rotate
from dispatcher.api.keys import create_key
from tests.dispatcher.api.inbox.conftest import ORIGIN, Inbox, hash_of, make_inbox


def test_a_session_is_opened_with_the_subscriber_hash_and_answers_what_novu_js_reads(
    inbox: Inbox,
) -> None:
    inbox.put("ada")
    answer = inbox.session("ada")
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert data["token"].count(".") == 2
    assert data["totalUnreadCount"] == 1
    assert data["unreadCount"] == {
        "total": 1,
        "severity": {"high": 0, "medium": 0, "low": 0, "none": 1},
    }
    assert data["applicationIdentifier"] == inbox.application_identifier
    assert {"removeNovuBranding", "isDevelopmentMode", "maxSnoozeDurationHours"} <= set(data)
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["sub"] == "ada"
    assert claims["org"] == str(inbox.organisation_id)
    assert 0 < claims["exp"] - time.time() <= 3600


def test_a_wrong_hash_an_unknown_application_or_no_proof_is_401(inbox: Inbox) -> None:
    assert inbox.session("ada", hash_of("bo", inbox.secret)).status_code == 401
    assert inbox.session("ada", "0" * 64).status_code == 401
    inbox.application_identifier = "app_unknown"
    assert inbox.session("ada").status_code == 401
    answer = inbox.client.post("/v1/inbox/session", json={"applicationIdentifier": "x"})
    assert answer.status_code == 401


def test_the_previous_secret_is_valid_during_the_overlap_only(inbox: Inbox) -> None:
    old = inbox.secret
    rotated = rotate(inbox.organisation_id, timedelta(minutes=5))
    assert rotated.application_identifier == inbox.application_identifier
    assert inbox.session("ada", hash_of("ada", old)).status_code == 201
    assert inbox.session("ada", hash_of("ada", rotated.secret)).status_code == 201
    again = rotate(inbox.organisation_id, timedelta(0))
    assert inbox.session("ada", hash_of("ada", rotated.secret)).status_code == 401
    assert inbox.session("ada", hash_of("ada", again.secret)).status_code == 201


def _app_token(secret: str, **claims: object) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_jwt_of_the_application_server_opens_a_session(inbox: Inbox) -> None:
    now = int(time.time())
    token = _app_token(inbox.secret, sub="ada", exp=now + 300)
    answer = inbox.session("ada", token)
    assert answer.status_code == 201, answer.text
    # Another subscriber's token, an expired one, one without expiry or one too long-lived.
    assert inbox.session("bo", token).status_code == 401
    assert inbox.session("ada", _app_token(inbox.secret, sub="ada", exp=now - 5)).status_code == 401
    assert inbox.session("ada", _app_token(inbox.secret, sub="ada")).status_code == 401
    long_lived = _app_token(inbox.secret, sub="ada", exp=now + 30 * 24 * 3600)
    assert inbox.session("ada", long_lived).status_code == 401
    assert inbox.session("ada", _app_token("other" * 8, sub="ada", exp=now + 60)).status_code == 401


def test_api_keys_open_no_inbox_and_session_tokens_open_no_api(inbox: Inbox) -> None:
    key = create_key(inbox.organisation_id, "server").key
    for header in (f"ApiKey {key}", f"Bearer {key}"):
        answer = inbox.client.get("/v1/inbox/notifications", headers={"Authorization": header})
        assert answer.status_code == 401
    session = inbox.headers("ada")
    assert inbox.client.get("/v2/subscribers/ada", headers=session).status_code == 401
    assert inbox.client.get("/v1/inbox/notifications", headers=session).status_code == 200
    assert inbox.client.get("/v1/inbox/notifications").status_code == 401


def test_a_token_of_the_session_key_of_another_organisation_is_refused(client: TestClient) -> None:
    first, second = make_inbox(client, "First"), make_inbox(client, "Second")
    token = first.headers("ada")["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "org": str(second.organisation_id)}, "x" * 32, algorithm="HS256")
    headers = {"Authorization": f"Bearer {forged}"}
    assert client.get("/v1/inbox/notifications", headers=headers).status_code == 401


def test_preflights_are_answered_for_allowed_origins_only(inbox: Inbox) -> None:
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = inbox.client.options(
        "/v1/inbox/notifications", headers={**preflight, "Origin": ORIGIN}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    refused = inbox.client.options(
        "/v1/inbox/notifications", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_requests_carry_the_origin_of_their_organisation_only(client: TestClient) -> None:
    inbox, other = make_inbox(client), make_inbox(client, "Other")
    headers = inbox.headers("ada")
    ok = client.get("/v1/inbox/notifications", headers={**headers, "Origin": ORIGIN})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    from dispatcher.api.inbox.secrets import set_origins

    set_origins(other.organisation_id, ["https://other.example"])
    refused = client.get(
        "/v1/inbox/notifications", headers={**headers, "Origin": "https://other.example"}
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    session = client.post(
        "/v1/inbox/session",
        headers={"Origin": "https://other.example"},
        json={
            "applicationIdentifier": inbox.application_identifier,
            "subscriberId": "ada",
            "subscriberHash": hash_of("ada", inbox.secret),
        },
    )
    assert session.status_code == 403
