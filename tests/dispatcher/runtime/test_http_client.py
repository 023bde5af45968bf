"""The shared sending client: no cookies between requests, auth still applied, no redirects."""

from __future__ import annotations

import asyncio

import httpx

from dispatcher.runtime.http_client import SharedAsyncClient


def run_against(handler: httpx.MockTransport, *calls: dict[str, object]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with SharedAsyncClient(transport=handler, follow_redirects=False) as client:
            return [await client.request(**call) for call in calls]  # type: ignore[arg-type]

    return asyncio.run(go())


def test_a_cookie_set_by_one_answer_is_not_sent_with_the_next_request() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=tenant-a; Path=/"}, json={})

    first, second = run_against(
        httpx.MockTransport(answer),
        # With auth: httpx's full path, where a client's cookie jar would store the cookie.
        {"method": "POST", "url": "https://api.example.com/a", "json": {}, "auth": ("u", "p")},
        {"method": "POST", "url": "https://api.example.com/b", "json": {"n": 2}},
        {"method": "POST", "url": "https://api.example.com/c", "json": {}, "auth": ("u", "p")},
    )[:2]
    assert seen == [None, None, None]
    assert (first.status_code, second.json()) == (200, {})


def test_the_body_is_read_and_the_request_attached() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"echo": request.content.decode()})

    [response] = run_against(
        httpx.MockTransport(answer), {"method": "POST", "url": "https://x.test/m", "content": "hi"}
    )
    assert response.json() == {"echo": "hi"}
    assert response.request.url == "https://x.test/m"


def test_basic_auth_is_applied_and_redirects_are_not_followed() -> None:
    headers: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("authorization"))
        return httpx.Response(302, headers={"location": "https://elsewhere.test/"})

    with_auth, without = run_against(
        httpx.MockTransport(answer),
        {"method": "GET", "url": "https://x.test/a", "auth": ("user", "pass")},
        {"method": "GET", "url": "https://x.test/b"},
    )
    assert headers == ["Basic dXNlcjpwYXNz", None]
    assert (with_auth.status_code, without.status_code) == (302, 302)
