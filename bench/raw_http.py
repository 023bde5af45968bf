"""A lean HTTP/1.1 keep-alive client for load generation: requests as prepared bytes over
asyncio protocols, one request at a time per connection, answers read by ``Content-Length``.

The benchmark's clients share the machine with the server they measure, and a full client is
expensive there: httpx over aiohttp spends about 1.5 ms of CPU a request on this machine, so at
1,000 requests a second the clients alone would take most of both cores. This one spends a few
tens of microseconds. It speaks only what the benchmark needs (no redirects, no chunked
answers, no TLS) and is not part of the product.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(ConnectionError("an answer without Content-Length"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end > 0 else len(head)].strip())
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        status, body = int(head[9:12]), bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed"))

    def _fail(self, error: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class RawClient:
    """Connections to one server, opened as needed up to ``max_connections``."""

    def __init__(self, host: str, port: int, headers: dict[str, str], max_connections: int) -> None:
        self.host, self.port = host, port
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.max_connections = max_connections
        self._idle: list[_Connection] = []
        self._opened = 0
        self._freed: asyncio.Condition | None = None

    def prepared(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """A request's bytes: ``body`` sent as JSON, or ``content`` as it is, with ``headers``
        besides the client's own."""
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        if content is not None:
            extra += f"Content-Length: {len(content)}\r\n"
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        return (head + self.headers + extra + "\r\n").encode() + (content or b"")

    async def send(self, data: bytes) -> tuple[int, bytes]:
        connection = await self._take()
        try:
            answer = await connection.request(data)
        except BaseException:
            self._opened -= 1
            if connection.transport is not None:
                connection.transport.close()
            await self._notify()
            raise
        self._idle.append(connection)
        await self._notify()
        return answer

    async def warm(self, connections: int) -> None:
        taken = [await self._take() for _ in range(min(connections, self.max_connections))]
        self._idle.extend(taken)

    async def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()

    async def _take(self) -> _Connection:
        if self._freed is None:
            self._freed = asyncio.Condition()
        while True:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection
                self._opened -= 1
            if self._opened < self.max_connections:
                self._opened += 1
                try:
                    _, protocol = await asyncio.get_running_loop().create_connection(
                        _Connection, self.host, self.port
                    )
                except BaseException:
                    self._opened -= 1
                    raise
                return protocol
            async with self._freed:
                await self._freed.wait()

    async def _notify(self) -> None:
        if self._freed is not None:
            async with self._freed:
                self._freed.notify()
