"""A guard against server-side request forgery for tenant-supplied destinations.

:func:`check_destination` accepts an http(s) URL only if every address its host resolves to is
public, or if the operator allowed the host or address. It checks; it does not connect: the
send path uses it to refuse a destination early, with a clear reason.

:class:`AddressPolicy` is the same rule for one host name or one address, which is what
:mod:`~dispatcher.runtime.guarded_connector` asks at the moment it connects: the address
checked is the address connected to, so a second DNS answer (rebinding) cannot slip past.
The policy lives in the runtime, not in ``dispatcher.sending``, because the runtime's HTTP
clients enforce it and the runtime may not import the sending layer.

Error messages name the host and the reason, never the path, query or user info of the URL:
those often carry tokens.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Maps a host name to the addresses it resolves to (strings); raises ``OSError`` if it cannot.
Resolver = Callable[[str], Iterable[str]]


class UnsafeDestinationError(ValueError):
    """A URL the dispatcher must not send to; the message says why without echoing the URL."""


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Order matters: the first match names the reason (the metadata address is link-local too).
_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("169.254.169.254/32"), "the cloud metadata address"),
    (_V6("fd00:ec2::254/128"), "the cloud metadata address"),
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V6("::/128"), "an unspecified address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V6("::1/128"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V6("ff00::/8"), "a multicast address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V6("fc00::/7"), "a private address"),
    (_V6("fec0::/10"), "a private address"),
    (_V6("64:ff9b:1::/48"), "a private address"),
    (_V4("198.18.0.0/15"), "a reserved address"),
    (_V4("192.0.0.0/24"), "a reserved address"),
    (_V4("192.0.2.0/24"), "a reserved address"),
    (_V4("198.51.100.0/24"), "a reserved address"),
    (_V4("203.0.113.0/24"), "a reserved address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
    (_V6("::/8"), "a reserved address"),
    (_V6("100::/64"), "a reserved address"),
    (_V6("2001:db8::/32"), "a reserved address"),
)

# IPv6 ranges that carry an IPv4 address in their low 32 bits and reach it through a gateway.
_EMBEDDING_V4 = (_V6("64:ff9b::/96"),)

_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_FORBIDDEN_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")


def system_resolver(host: str) -> list[str]:
    """Every address ``socket.getaddrinfo`` gives for ``host`` (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read as the C library reads a numeric IPv4 host: 1 to 4 dotted parts, each
    decimal, ``0x`` hex or ``0`` octal, the last filling the remaining bytes
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` are all 127.0.0.1). None for a host name; an
    all-numeric host that is no valid address raises, since resolvers disagree on it."""
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return None
    values: list[int] = []
    for label in labels:
        if label.startswith("0x"):
            values.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise UnsafeDestinationError("host is a malformed numeric address")
            values.append(int(label, 8))
        else:
            values.append(int(label))
    if len(values) > 4 or any(value > 255 for value in values[:-1]):
        raise UnsafeDestinationError("host is a malformed numeric address")
    last_bytes = 5 - len(values)
    if values[-1] >= 256**last_bytes:
        raise UnsafeDestinationError("host is a malformed numeric address")
    number = values[-1]
    for position, value in enumerate(values[:-1]):
        number += value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def _standard_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address leads to through its gateway."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _EMBEDDING_V4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def unsafe_reason(address: IPAddress) -> str | None:
    """Why sending to ``address`` is unsafe, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket connecting to ::ffff:a.b.c.d reaches a.b.c.d itself.
        return unsafe_reason(address.ipv4_mapped)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = unsafe_reason(embedded)
        if reason is not None:
            return reason
    for network, reason in _BLOCKED:
        if address.version == network.version and address in network:
            return reason
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "an address that is not publicly routable"
    return None


class _Allowlist:
    def __init__(self, entries: Sequence[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip().lower().rstrip(".")
            try:
                self.networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(text)

    def allows_host(self, host: str) -> bool:
        return host in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )


class AddressPolicy:
    """The operator's allow-list (``DISPATCHER_URL_ALLOWLIST``) applied to one host name or one
    address: what a connector asks just before it connects."""

    def __init__(self, allow: Sequence[str] = ()) -> None:
        self.allow = tuple(allow)
        self._allowlist = _Allowlist(self.allow)

    def allows_host(self, host: str) -> bool:
        """Whether the operator allowed ``host`` by name: every address it resolves to is."""
        return self._allowlist.allows_host(host.lower().rstrip("."))

    def refusal(self, address: str) -> str | None:
        """Why connecting to ``address`` is refused, or None when it is public or allowed."""
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return "a malformed address"
        if self._allowlist.allows_address(parsed):
            return None
        return unsafe_reason(parsed)


def _host_of(url: str) -> str:
    if _FORBIDDEN_IN_URL.search(url):
        raise UnsafeDestinationError("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise UnsafeDestinationError("URL is malformed") from None
    if parts.scheme not in {"http", "https"}:
        raise UnsafeDestinationError("URL scheme must be http or https")
    bracketed = parts.netloc.rpartition("@")[2].startswith("[")
    host = (host or "").rstrip(".")
    if not host:
        raise UnsafeDestinationError("URL has no host")
    if "%" in host and not bracketed:
        raise UnsafeDestinationError("host contains percent-encoding")
    if not host.isascii():
        # The resolver maps such names to ASCII (IDNA), and full-width digits to digits.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeDestinationError("host is not a valid internationalised name") from None
    return host


def check_destination(
    url: str, *, allow: Sequence[str] = (), resolver: Resolver = system_resolver
) -> None:
    """Raise :class:`UnsafeDestinationError` unless ``url`` may be sent to.

    The URL must be http(s) with a host, and every address the host resolves to must be
    public, unless the host or the address matches an ``allow`` entry (a host name, an IP
    address or a CIDR network).
    """
    host = _host_of(url)
    allowlist = _Allowlist(allow)
    if allowlist.allows_host(host):
        return
    standard = _standard_address(host)
    literal = standard if standard is not None else _legacy_ipv4(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            resolved = list(resolver(host))
        except (OSError, UnicodeError):
            raise UnsafeDestinationError(f"host {host!r} does not resolve") from None
        if not resolved:
            raise UnsafeDestinationError(f"host {host!r} does not resolve")
        try:
            addresses = [ipaddress.ip_address(item) for item in resolved]
        except ValueError:
            raise UnsafeDestinationError(f"host {host!r} resolves to a malformed address") from None
    for address in addresses:
        if allowlist.allows_address(address):
            continue
        reason = unsafe_reason(address)
        if reason is None:
            continue
        if literal is None:
            raise UnsafeDestinationError(f"host {host!r} resolves to {address}, which is {reason}")
        if standard is None:
            raise UnsafeDestinationError(f"host {host!r} means {literal}, which is {reason}")
        raise UnsafeDestinationError(f"host {host!r} is {reason}")


async def check_destination_async(
    url: str, *, allow: Sequence[str] = (), resolver: Resolver = system_resolver
) -> None:
    """:func:`check_destination` with the name resolution in a thread, off the event loop."""
    await asyncio.to_thread(check_destination, url, allow=allow, resolver=resolver)


class DestinationGuard:
    """The operator's allow-list applied to tenant-supplied URLs, each URL checked once.

    One guard serves a unit of work (a batch, a probe run, a command): the same URL named by
    many deliveries is resolved once, and a refusal keeps its reason.
    """

    def __init__(self, allow: Sequence[str] = (), *, resolver: Resolver = system_resolver) -> None:
        self.allow = tuple(allow)
        self._resolver = resolver
        self._checks: dict[str, asyncio.Future[None]] = {}

    async def check(self, url: str) -> None:
        """Raise :class:`UnsafeDestinationError` unless ``url`` may be sent to."""
        if url not in self._checks:
            self._checks[url] = asyncio.ensure_future(
                check_destination_async(url, allow=self.allow, resolver=self._resolver)
            )
        await asyncio.shield(self._checks[url])
