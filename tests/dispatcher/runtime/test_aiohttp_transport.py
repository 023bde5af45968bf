"""The shared client's failures against a real server on loopback: what happened, and whether
the request may have reached the provider (only then is a resend able to duplicate it)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.abc import ResolveResult

from dispatcher.runtime.aiohttp_transport import classified
from dispatcher.runtime.http import SendingRuntime
from providers.errors import AmbiguousError, RetryableError
from providers.http import TransportFailure, send_request

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: Seconds the client waits for an answer; the stalling server waits longer.
TIMEOUT = 0.5


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + await reader.readexactly(length)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.close()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(TIMEOUT * 10)


async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id": ')
    await writer.drain()
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SMTP? 220 hello\r\n\r\n")
    await writer.drain()
    writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UnknownHosts(aiohttp.abc.AbstractResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def post(url: str, resolver: aiohttp.abc.AbstractResolver | None = None) -> Exception:
    runtime = SendingRuntime(
        timeout=TIMEOUT, max_connections=4, url_allowlist=("127.0.0.1",), resolver=resolver
    )
    client = runtime.client()
    try:
        await send_request("acme", client, "POST", url, json={"to": "ada@example.com"})
    except RetryableError as exc:
        return exc
    finally:
        await client.aclose()
    raise AssertionError("the request succeeded")


async def post_to(handler: Handler) -> tuple[Exception, int]:
    """The error of one POST to a server running ``handler``, and the requests it read."""
    received = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        received += 1
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await handler(reader, writer)

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await post(f"http://127.0.0.1:{port}/send")
    finally:
        server.close()
    return error, received


@pytest.mark.parametrize(
    ("handler", "failure", "kind"),
    [
        (hang_up, TransportFailure.DISCONNECTED, "RemoteProtocolError"),
        (reset, TransportFailure.CONNECTION_RESET, "ReadError"),
        (stall, TransportFailure.READ_TIMEOUT, "ReadTimeout"),
        (half_answer, TransportFailure.INCOMPLETE_ANSWER, "ReadError"),
        (garbage, TransportFailure.MALFORMED_ANSWER, "RemoteProtocolError"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_no_answer_after_the_request_was_read_is_ambiguous(
    handler: Handler, failure: TransportFailure, kind: str
) -> None:
    error, received = asyncio.run(post_to(handler))
    assert received == 1
    assert type(error) is AmbiguousError
    assert str(error) == (
        f"acme: {failure.value} ({kind}); the request may have reached the provider"
    )


def test_a_refused_connection_was_not_sent() -> None:
    error = asyncio.run(post(f"http://127.0.0.1:{free_port()}/send"))
    assert type(error) is RetryableError
    assert str(error) == "acme: not sent: connection refused (ConnectError)"


def test_a_host_name_that_does_not_resolve_was_not_sent() -> None:
    error = asyncio.run(post("http://provider.invalid/send", resolver=UnknownHosts()))
    assert type(error) is RetryableError
    assert str(error) == "acme: not sent: host name not resolved (ConnectError)"


@pytest.mark.parametrize(
    ("error", "failure", "kind"),
    [
        (aiohttp.ConnectionTimeoutError(), TransportFailure.CONNECT_TIMEOUT, "ConnectTimeout"),
        (aiohttp.SocketTimeoutError(), TransportFailure.READ_TIMEOUT, "ReadTimeout"),
        (aiohttp.ServerDisconnectedError(), TransportFailure.DISCONNECTED, "RemoteProtocolError"),
        (aiohttp.ClientOSError(104, "reset"), TransportFailure.CONNECTION_RESET, "ReadError"),
        (aiohttp.ClientOSError(5, "I/O"), TransportFailure.CONNECTION_LOST, "ReadError"),
        (aiohttp.InvalidURL("x"), TransportFailure.INVALID_URL, "UnsupportedProtocol"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_each_aiohttp_error_is_named_by_the_phase_it_happens_in(
    error: aiohttp.ClientError, failure: TransportFailure, kind: str
) -> None:
    mapped = classified(error)
    assert type(mapped).__name__ == kind
    assert mapped.args == (failure,)
