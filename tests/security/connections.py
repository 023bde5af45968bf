"""A loopback listener that counts the TCP connections it is offered, and the guarded runtime."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dispatcher.runtime.http import SendingRuntime


class Listener:
    """Accepts and at once closes every connection to ``host``:``port``, counting them.

    A client that connected has been accepted before it sees the close, so after a send
    returns, ``connections`` says whether it reached this address.
    """

    def __init__(self, host: str, port: int = 0) -> None:
        self._socket = socket.create_server((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join()


@contextmanager
def listening(host: str = "127.0.0.2", port: int = 0) -> Iterator[Listener]:
    """A listener on ``host`` (loopback, outside the suite's allow-list of 127.0.0.1); with a
    fixed ``port`` (443 for https-only webhook URLs), on a free loopback address of 127/8."""
    listener = None
    while listener is None:
        try:
            listener = Listener(host, port)
        except OSError:
            if not port:
                raise
            host = (
                f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"
            )
    try:
        yield listener
    finally:
        listener.close()


@contextmanager
def guarded_runtime(allow: Sequence[str] = ()) -> Iterator[SendingRuntime]:
    runtime = SendingRuntime(timeout=5.0, max_connections=4, url_allowlist=allow)
    try:
        yield runtime
    finally:
        runtime.close()
