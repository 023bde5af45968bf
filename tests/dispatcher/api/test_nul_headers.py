"""Control characters in the headers that reach the database (``Authorization``,
``Idempotency-Key``): a 4xx in Novu's error shape naming the header, never a 500."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.dev.api_process import running_api
from tests.conftest import DATA_DIR, free_port
from tests.dispatcher.api.conftest import Keyed
from tests.dispatcher.notify_support import EMAIL_STEP, subscriber, workflow

EVENT = {"name": "code", "to": "ada", "payload": {"code": "1"}}
BAD = ["a\x00b", "\x00", "a\x01b", "a\x1fb", "a\x7fb"]


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("route", [("POST", "/v1/events/trigger"), ("GET", "/v2/subscribers")])
def test_a_control_character_in_the_api_key_is_401(
    client: TestClient, keyed: Keyed, value: str, route: tuple[str, str]
) -> None:
    method, path = route
    for authorization in (f"ApiKey {value}", f"ApiKey {keyed.key}{value}"):
        answer = client.request(method, path, headers={"Authorization": authorization},
                                json=EVENT if method == "POST" else None)  # fmt: skip
        assert answer.status_code == 401, answer.text
        body = answer.json()
        assert {"statusCode", "timestamp", "path", "message"} <= set(body), body
        assert body["statusCode"] == 401


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_control_character_in_the_idempotency_key_is_422_naming_it(
    client: TestClient, keyed: Keyed, value: str
) -> None:
    workflow(keyed.organisation_id, "code", [{"kind": "delay", "config": {"seconds": 3600}},
                                             EMAIL_STEP])  # fmt: skip
    subscriber(keyed.organisation_id, "ada")
    headers = {**keyed.headers, "Idempotency-Key": value}
    for path in ("/v1/events/trigger", "/v2/subscribers"):
        body = EVENT if path.startswith("/v1/events") else {"subscriberId": "ada"}
        answer = client.post(path, headers=headers, json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()
        assert error["statusCode"] == 422 and list(error["errors"]) == ["idempotency-key"], error
    assert client.post("/v1/events/trigger", headers={**keyed.headers, "Idempotency-Key": "a b"},
                       json=EVENT).status_code == 201  # fmt: skip


@pytest.fixture(scope="module")
def served(postgres_url: str, redis_url: str) -> Iterator[int]:
    port = free_port()
    with running_api(port=port, log_file=DATA_DIR / "api-headers.log"):
        yield port


def raw_post(port: int, header: bytes) -> tuple[bytes, dict[str, Any]]:
    """A trigger sent byte for byte (HTTP clients refuse to send such headers)."""
    body = json.dumps(EVENT).encode()
    request = b"".join([
        b"POST /v1/events/trigger HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n",
        header, b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\nConnection: close\r\n\r\n",
        body,
    ])  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(payload)


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x01b", b"a\x7fb"], ids=repr)
@pytest.mark.parametrize("name", [b"Authorization: ApiKey ", b"Idempotency-Key: "])
def test_the_served_api_answers_headers_its_parser_refuses_in_novus_shape(
    served: int, keyed: Keyed, name: bytes, value: bytes
) -> None:
    own = f"Authorization: ApiKey {keyed.key}\r\n".encode()
    status, body = raw_post(served, (b"" if b"Authorization" in name else own) + name + value)
    assert status.split(b" ")[1] in {b"400", b"401", b"422"}, status
    assert {"statusCode", "timestamp", "path", "message"} <= set(body), body
