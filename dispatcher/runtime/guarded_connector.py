"""Every connection the dispatcher opens for a tenant, checked at the address it connects to.

A tenant names destinations in integration settings and credentials (webhook URLs, base URLs, a
token endpoint, an SMTP host) and in subscribers' webhook URLs. Checking such a name before the
request is not enough: the client resolves it again and may get another answer (DNS rebinding).
So the check sits where the connection is made, and sees the address actually connected to:

* :class:`GuardedResolver` resolves a host name and refuses the answer if any address in it is
  private, loopback, link-local, metadata or otherwise not public, unless the operator allowed
  the host or the address (:class:`~dispatcher.runtime.url_guard.AddressPolicy`); the client
  connects only to the addresses it returned;
* :meth:`GuardedConnector.socket_factory` is called with each address just before a socket is
  connected, and refuses one that is neither public, nor allowed, nor returned by the resolver
  for an allowed host name and the same port. It catches what bypasses the resolver: a URL
  with a literal IP address;
* the shared HTTP/1.1 client (aiohttp under httpx) is built with both
  (:meth:`GuardedConnector.aiohttp_session`), the HTTP/2 client on
  :class:`GuardedNetworkBackend`, and non-HTTP providers (SMTP) get
  :meth:`GuardedConnector.open_connection` as their ``providers.base.Connector``.

A refusal raises :class:`providers.http.RefusedConnectionError`, which the HTTP libraries pass
through unchanged and ``providers.http.send_request`` turns into an integration error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

import aiohappyeyeballs
import aiohttp
import httpcore
import httpx
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from dispatcher.runtime.url_guard import AddressPolicy
from providers.http import RefusedConnectionError


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class GuardedResolver(AbstractResolver):
    """Resolves host names with ``inner`` (the threaded system resolver by default) and refuses
    an answer that names an address the policy does not allow."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner
        #: ``(address, port)`` pairs an allowed host name resolved to: connectable as well.
        self.approved: set[tuple[str, int]] = set()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # The system resolver binds to the running loop, so it is made per call, in the loop.
        inner = self._inner or ThreadedResolver(asyncio.get_running_loop())
        answers = await inner.resolve(host, port, family)
        if self.policy.allows_host(host):
            self.approved.update((answer["host"], answer["port"]) for answer in answers)
            return answers
        for answer in answers:
            reason = self.policy.refusal(answer["host"])
            if reason is not None:
                raise RefusedConnectionError(
                    host, f"host {host!r} resolves to {answer['host']}, which is {reason}"
                )
        return answers

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class GuardedConnector:
    """The one place the dispatcher's outbound connections are checked (see the module)."""

    def __init__(self, policy: AddressPolicy, *, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.resolver = GuardedResolver(policy, resolver)

    def check_address(self, address: str, port: int) -> None:
        """Raise :class:`RefusedConnectionError` unless connecting to ``address`` is allowed."""
        if (address, port) in self.resolver.approved:
            return
        reason = self.policy.refusal(address)
        if reason is not None:
            raise RefusedConnectionError(address, f"{address} is {reason}")

    def socket_factory(self, addr_info: AddrInfoType) -> socket.socket:
        """A socket for ``addr_info``, once its address has passed :meth:`check_address`."""
        family, type_, proto, _, sockaddr = addr_info
        self.check_address(str(sockaddr[0]), int(sockaddr[1]))
        return socket.socket(family=family, type=type_, proto=proto)

    async def addr_infos(self, host: str, port: int) -> list[AddrInfoType]:
        """The checked addresses to connect to for ``host``:``port``."""
        if _is_address(host):
            self.check_address(host, port)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
        answers = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        return [
            (answer["family"], socket.SOCK_STREAM, answer["proto"], "", (answer["host"], port))
            for answer in answers
        ]

    async def open_connection(self, host: str, port: int, *, timeout: float) -> socket.socket:
        """A connected socket to a checked address of ``host`` (``providers.base.Connector``)."""
        async with asyncio.timeout(timeout):
            infos = await self.addr_infos(host, port)
            return await aiohappyeyeballs.start_connection(
                infos, happy_eyeballs_delay=0.25, socket_factory=self.socket_factory
            )

    def aiohttp_session(self, limits: httpx.Limits, ssl_context: object) -> aiohttp.ClientSession:
        """An aiohttp session as ``httpx_aiohttp`` builds one, on the guarded resolver and
        socket factory."""
        limit = {"limit": limits.max_connections} if limits.max_connections is not None else {}
        connector = aiohttp.TCPConnector(
            keepalive_timeout=limits.keepalive_expiry,
            ssl=ssl_context,  # type: ignore[arg-type]
            resolver=self.resolver,
            socket_factory=self.socket_factory,
            **limit,  # type: ignore[arg-type]
        )
        return aiohttp.ClientSession(connector=connector)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses :class:`GuardedConnector`
    checked. httpcore starts TLS with the origin's host name, not the address, so certificate
    and SNI checks are unchanged."""

    def __init__(
        self, connector: GuardedConnector, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._connector = connector
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        infos = await self._connector.addr_infos(host, port)
        failure: httpcore.ConnectError | None = None
        for info in infos:
            address = str(info[4][0])
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedConnectionError(path, "Unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def http2_transport(connector: GuardedConnector, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own HTTP/2 transport on :class:`GuardedNetworkBackend`.

    httpx 0.28 has no public way to pass httpcore a network backend. Its transport is a thin
    shell around one connection pool (``handle_async_request`` maps the request, the response
    and the errors, nothing else), so the pool it built is replaced by one made with the same
    arguments plus the backend. ``tests/dispatcher/runtime/test_guarded_connector.py`` fails if
    a new httpx stops using it.
    """
    transport = httpx.AsyncHTTPTransport(http2=True, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=True,
        network_backend=GuardedNetworkBackend(connector),
    )
    return transport
