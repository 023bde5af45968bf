"""A TCP proxy on loopback whose link can be cut and restored: a service outage without touching
the service.

Workers are pointed at the proxy's port instead of the service. ``cut()`` stops listening (new
connections are refused at once, as by a stopped server) and aborts every open connection (as a
server restart does); ``restore()`` listens again on the same port. The proxy runs its own event
loop in a background thread, so it keeps forwarding while the test blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._links: set[asyncio.StreamWriter] = set()
        #: Bumped by every cut: a connection accepted before it must not outlive it.
        self._generation = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and abort the open ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._cut())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _call(self, coroutine: object) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        future.result(timeout=10)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        # The same port every time, so the clients' URLs stay valid across cuts.
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        self._generation += 1
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._links):
            _abort(writer)
        self._links.clear()
        if server is not None:
            await server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        generation = self._generation
        if self._server is None:
            _abort(client_w)
            return
        try:
            service_r, service_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort(client_w)
            return
        if generation != self._generation:
            _abort(client_w)
            _abort(service_w)
            return
        self._links.update((client_w, service_w))
        try:
            await asyncio.gather(_pipe(client_r, service_w), _pipe(service_r, client_w))
        finally:
            for writer in (client_w, service_w):
                self._links.discard(writer)
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset, as a dying server does, rather than an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
