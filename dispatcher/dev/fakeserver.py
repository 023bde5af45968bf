"""A local fake provider: an HTTP/1.1 server that the ``fake_http`` provider posts to.

Each integration posts to its own path (``/primary``, ``/secondary``); each path can be told how
to answer through ``POST /_control/<path>`` with a JSON behaviour::

    {"default": "ok", "script": ["500", "429", "ok"], "latency_ms": 100,
     "fail_ratio": 0.1, "retry_after": 1, "trickle_ms": 0, "first_answer": "drop",
     "idempotent": false}

Answers: ``ok`` (200 with a message id), ``500``, ``429`` (with Retry-After: ``retry_after``,
a number of seconds or, to play a provider that sends something else, any text), ``401``,
``invalid`` (400, invalid recipient), ``timeout`` (no answer for a minute). Three answers accept
the message and then lose the answer, as a provider that sent it and timed out or hung up
(ambiguous outcomes): ``drop`` (the connection is closed without an answer), ``reset`` (it is
reset) and ``stall`` (no answer for a minute). ``first_answer`` answers the first request of
each delivery on the path; then ``script`` answers are used, in order; then ``fail_ratio`` of
requests answer 500 at random; then ``default``. ``idempotent`` makes the path keep the
``Idempotency-Key`` of every message it accepted: a request with a known key is answered the
first one's message id without sending again (recorded as ``replayed``).
``signing_secret`` answers 401 to requests not signed with it the way ``providers.webhook``
signs (a fetch step with ``sign``).
``answer_json`` (or ``answer_text``) is what ``ok`` answers in place of the message id: a fetch
step's answer; a path configured so answers ``GET`` requests too (other ``GET`` requests are
answered ``{"ok": true}``).
``trickle_ms`` writes the answer one byte at a time, that many milliseconds apart (a provider
that never stops answering quite long enough for a per-read timeout to fire).
``callback_url`` with ``callback_secret`` makes the path call back like a real provider: after
each message it accepted (``ok``), ``callback_delay_ms`` later (default 500), it posts a signed
delivery callback (``providers.fake``: ``X-Fake-Signature``) with status ``callback_status``
(default ``delivered``) for the message id it answered, the message's ``to.email`` (or phone)
as recipient.
Every request is recorded by delivery id: ``GET /_stats`` counts them, ``GET /_requests`` lists
them, ``DELETE /_requests`` forgets them. Used by the end-to-end tests, the demo and the
benchmarks; it listens on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from providers.fake import sign_fake_callback
from providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

#: Answers for which the provider sent the message (the answer may have been lost).
SENDING_ANSWERS = frozenset({"ok", "drop", "reset", "stall"})
#: Answers that lose the answer to a message the provider sent.
LOST_ANSWERS = SENDING_ANSWERS - {"ok"}

ANSWERS = {
    "ok": (200, "OK"),
    "500": (500, "Internal Server Error"),
    "429": (429, "Too Many Requests"),
    "401": (401, "Unauthorized"),
    "invalid": (400, "Bad Request"),
}


@dataclass
class Behaviour:
    default: str = "ok"
    script: deque[str] = field(default_factory=deque)
    latency_ms: float = 0.0
    fail_ratio: float = 0.0
    retry_after: float | str = 1.0
    trickle_ms: float = 0.0
    first_answer: str | None = None
    idempotent: bool = False
    callback_url: str | None = None
    callback_secret: str | None = None
    callback_status: str = "delivered"
    callback_delay_ms: float = 500.0
    #: What ``ok`` answers instead of ``{"id": <message id>}``: a fetch step's answer (JSON,
    #: or ``answer_text`` sent as it is).
    answer_json: Any = None
    answer_text: str | None = None
    #: Requests not signed with it (``providers.webhook``'s scheme) are answered 401.
    signing_secret: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        return cls(
            default=str(data.get("default", "ok")),
            script=deque(str(item) for item in data.get("script", [])),
            latency_ms=float(data.get("latency_ms", 0.0)),
            fail_ratio=float(data.get("fail_ratio", 0.0)),
            retry_after=_retry_after(data.get("retry_after", 1.0)),
            trickle_ms=float(data.get("trickle_ms", 0.0)),
            first_answer=str(data["first_answer"]) if data.get("first_answer") else None,
            idempotent=bool(data.get("idempotent", False)),
            callback_url=data.get("callback_url"),
            callback_secret=data.get("callback_secret"),
            callback_status=str(data.get("callback_status", "delivered")),
            callback_delay_ms=float(data.get("callback_delay_ms", 500.0)),
            answer_json=data.get("answer_json"),
            answer_text=data.get("answer_text"),
            signing_secret=data.get("signing_secret"),
        )


def _retry_after(value: Any) -> float | str:
    return value if isinstance(value, str) else float(value)


@dataclass
class Recorded:
    path: str
    delivery_id: str | None
    answer: str
    at: float


class FakeProviderState:
    def __init__(self, seed: int | None = None) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: list[Recorded] = []
        self.random = random.Random(seed)  # noqa: S311 - failure injection, not security
        self.counter = 0
        #: (path, delivery id) pairs that had a request.
        self.seen: set[tuple[str, str | None]] = set()
        #: (path, idempotency key) -> message id, on idempotent paths.
        self.keys: dict[tuple[str, str], str] = {}
        #: Callbacks that could not be posted.
        self.callback_errors: list[str] = []

    def answer_for(self, path: str, delivery_id: str | None = None) -> tuple[str, Behaviour]:
        behaviour = self.behaviours.setdefault(path, Behaviour())
        first = (path, delivery_id) not in self.seen
        self.seen.add((path, delivery_id))
        if first and behaviour.first_answer is not None:
            return behaviour.first_answer, behaviour
        if behaviour.script:
            return behaviour.script.popleft(), behaviour
        if behaviour.fail_ratio and self.random.random() < behaviour.fail_ratio:
            return "500", behaviour
        return behaviour.default, behaviour

    def stats(self) -> dict[str, Any]:
        by_path = Counter(item.path for item in self.requests)
        sent = Counter(item.delivery_id for item in self.requests if item.answer == "ok")
        return {
            "requests": len(self.requests),
            "by_path": dict(by_path),
            "by_answer": dict(Counter(item.answer for item in self.requests)),
            "accepted_deliveries": len(sent),
            "duplicate_deliveries": sum(1 for count in sent.values() if count > 1),
        }


class FakeProviderServer:
    """Runs the server on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int | None = None) -> None:
        self.host = host
        self.port = port
        self.state = FakeProviderState(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeProviderServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def configure(self, path: str, **behaviour: Any) -> None:
        self.state.behaviours[path.strip("/")] = Behaviour.from_json(behaviour)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, body, key, sent = request
                status, reason, payload, headers, delay = self._handle(
                    method, path, body, key, sent
                )
                if delay:
                    await asyncio.sleep(delay)
                if reason in LOST_ANSWERS:
                    _hang_up(writer, reset=reason == "reset")
                    break
                behaviour = self.state.behaviours.get(path.split("?", 1)[0].strip("/"))
                answer = _response(status, reason, payload, headers)
                if behaviour is not None and behaviour.trickle_ms:
                    for index in range(len(answer)):
                        writer.write(answer[index : index + 1])
                        await writer.drain()
                        await asyncio.sleep(behaviour.trickle_ms / 1000)
                else:
                    writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _handle(
        self,
        method: str,
        path: str,
        body: bytes,
        key: str | None = None,
        sent: dict[str, str] | None = None,
    ) -> tuple[int, str, bytes, dict[str, str], float]:
        name = path.split("?", 1)[0].strip("/")
        if name.startswith("_control/") and method == "POST":
            self.configure(name.removeprefix("_control/"), **json.loads(body or b"{}"))
            return 200, "OK", b'{"ok": true}', {}, 0.0
        if name == "_stats":
            return 200, "OK", json.dumps(self.state.stats()).encode(), {}, 0.0
        if name == "_requests":
            if method == "DELETE":
                self.state.requests.clear()
                return 200, "OK", b'{"ok": true}', {}, 0.0
            listed = [item.__dict__ for item in self.state.requests]
            return 200, "OK", json.dumps({"requests": listed}).encode(), {}, 0.0
        if method == "GET" and name not in self.state.behaviours:
            return 200, "OK", b'{"ok": true}', {}, 0.0
        return self._answer(name, body, key, sent or {})

    def _answer(
        self, name: str, body: bytes, key: str | None, sent: dict[str, str]
    ) -> tuple[int, str, bytes, dict[str, str], float]:
        """The provider's answer to a message posted to path ``name``."""
        secret = self.state.behaviours.get(name, Behaviour()).signing_secret
        if secret is not None and not _signed(secret, body, sent):
            self.state.requests.append(Recorded(name, key, "unsigned", time.time()))
            return 401, "Unauthorized", b'{"error": "bad signature"}', {}, 0.0
        try:
            message = json.loads(body)
            delivery_id = message.get("delivery_id")
        except (ValueError, AttributeError):
            message, delivery_id = {}, None
        # A fetch step's GET has no body; its Idempotency-Key names its delivery.
        delivery_id = delivery_id or key
        behaviour = self.state.behaviours.setdefault(name, Behaviour())
        replayed = self.state.keys.get((name, key)) if key and behaviour.idempotent else None
        if replayed is not None:
            self.state.requests.append(Recorded(name, delivery_id, "replayed", time.time()))
            return 200, "OK", json.dumps({"id": replayed}).encode(), {}, 0.0
        answer, behaviour = self.state.answer_for(name, delivery_id)
        self.state.requests.append(Recorded(name, delivery_id, answer, time.time()))
        delay = behaviour.latency_ms / 1000
        if answer in SENDING_ANSWERS:
            self.state.counter += 1
            message_id = f"msg-{self.state.counter}"
            if key and behaviour.idempotent:
                self.state.keys[(name, key)] = message_id
        if answer in LOST_ANSWERS:
            return 0, answer, b"", {}, 60.0 if answer == "stall" else delay
        if answer == "timeout":
            return 504, "Gateway Timeout", b"", {}, 60.0
        status, reason = ANSWERS.get(answer, (500, "Internal Server Error"))
        headers: dict[str, str] = {}
        if answer == "ok":
            payload = _accepted(behaviour, message_id)
            if behaviour.callback_url and behaviour.callback_secret:
                self._loop.call_later(
                    behaviour.callback_delay_ms / 1000,
                    self._call_back,
                    behaviour,
                    message_id,
                    (message.get("to") or {}) if isinstance(message, dict) else {},
                )
        elif answer == "invalid":
            payload = b'{"error": "invalid_recipient"}'
        elif answer == "429":
            wait = behaviour.retry_after
            headers["Retry-After"] = wait if isinstance(wait, str) else f"{wait:g}"
            payload = b'{"error": "rate_limited"}'
        else:
            payload = json.dumps({"error": answer}).encode()
        return status, reason, payload, headers, delay

    def _call_back(self, behaviour: Behaviour, message_id: str, to: dict[str, Any]) -> None:
        """Post the delivery callback from a thread (the server's loop keeps serving)."""
        assert behaviour.callback_url is not None
        assert behaviour.callback_secret is not None
        event = {
            "id": f"evt-{message_id}-{behaviour.callback_status}",
            "messageId": message_id,
            "status": behaviour.callback_status,
            "timestamp": time.time(),
            "recipient": to.get("email") or to.get("phone"),
        }
        body = json.dumps([event]).encode()
        headers = sign_fake_callback(behaviour.callback_secret, body)
        request = urllib.request.Request(  # noqa: S310 - the test's own callback URL
            behaviour.callback_url, data=body, headers=headers, method="POST"
        )

        def post() -> None:
            try:
                with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                    pass
            except OSError as exc:
                self.state.callback_errors.append(f"{type(exc).__name__}: {exc}")

        threading.Thread(target=post, daemon=True).start()


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, bytes, str | None, dict[str, str]] | None:
    """Method, path, body, ``Idempotency-Key`` and the (lower-cased) headers of the next
    request; None at the end."""
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or "0")
    body = await reader.readexactly(length) if length else b""
    return method, path, body, headers.get("idempotency-key"), headers


def _accepted(behaviour: Behaviour, message_id: str) -> bytes:
    """What ``ok`` answers: the message id, or the path's fetch answer."""
    if behaviour.answer_text is not None:
        return behaviour.answer_text.encode()
    if behaviour.answer_json is not None:
        return json.dumps(behaviour.answer_json).encode()
    return json.dumps({"id": message_id}).encode()


def _signed(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    return verify_signature(
        secret,
        headers.get(TIMESTAMP_HEADER.lower(), ""),
        body,
        headers.get(SIGNATURE_HEADER.lower(), ""),
    )


def _hang_up(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close the connection without an answer; ``reset``: with a TCP reset, not a FIN."""
    if reset:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()


def _response(status: int, reason: str, payload: bytes, headers: dict[str, str]) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
            f"Content-Length: {len(payload)}", "Connection: keep-alive"]  # fmt: skip
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8025)
    arguments = parser.parse_args()
    server = FakeProviderServer(port=arguments.port).start()
    print(f"fake provider listening on {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
