"""The URL guard: only public http(s) destinations pass, whatever the spelling. No network."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import pytest

from dispatcher.runtime.url_guard import (
    UnsafeDestinationError,
    check_destination,
    check_destination_async,
    system_resolver,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

DNS: dict[str, list[str]] = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "hooks.example.com": [PUBLIC_V4],
    "localhost": ["127.0.0.1", "::1"],
    "internal.example.com": ["10.1.2.3"],
    "printer.example.com": ["192.168.1.20"],
    "docker.example.com": ["172.17.0.1"],
    "cgnat.example.com": ["100.64.12.1"],
    "metadata.example.com": ["169.254.169.254"],
    "metadata6.example.com": ["fd00:ec2::254"],
    "linklocal.example.com": ["169.254.10.10"],
    "ula.example.com": ["fd12:3456:789a::1"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "multicast.example.com": ["239.1.1.1"],
    "zero.example.com": ["0.0.0.0"],
    "reserved.example.com": ["240.0.0.1"],
    "rebind.example.com": [PUBLIC_V4, "127.0.0.1"],
    "empty.example.com": [],
    "garbage.example.com": ["not-an-address"],
}


class FakeResolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str) -> Iterable[str]:
        self.asked.append(host)
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return DNS[host]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks/T000/B000/XXXX",
        "http://hooks.example.com:8080/path?x=1",
        "HTTPS://EXAMPLE.COM./",
        "https://user:password@example.com/",
        f"http://{PUBLIC_V4}/",
        "http://[2001:4860:4860::8888]/",
        "http://[::ffff:8.8.8.8]/",
    ],
)
def test_public_destinations_pass(url: str) -> None:
    check_destination(url, resolver=FakeResolver())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # DNS names that resolve to internal addresses
        ("http://localhost/", "loopback"),
        ("http://internal.example.com/", "private"),
        ("http://printer.example.com/", "private"),
        ("http://docker.example.com/", "private"),
        ("http://cgnat.example.com/", "carrier-grade NAT"),
        ("http://metadata.example.com/latest/meta-data/", "cloud metadata"),
        ("http://metadata6.example.com/", "cloud metadata"),
        ("http://linklocal.example.com/", "link-local"),
        ("http://ula.example.com/", "private"),
        ("http://mapped.example.com/", "private"),
        ("http://multicast.example.com/", "multicast"),
        ("http://zero.example.com/", "unspecified"),
        ("http://reserved.example.com/", "reserved"),
        ("http://rebind.example.com/", "loopback"),  # one bad address among good ones
        # IPv4 literals, in every spelling a C resolver accepts
        ("http://127.0.0.1/", "loopback"),
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0/", "unspecified"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://100.100.100.200/", "carrier-grade NAT"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://0xa9fea9fe/", "cloud metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://255.255.255.255/", "reserved"),
        ("http://198.18.0.1/", "reserved"),
        # IPv6 literals
        ("http://[::1]/", "loopback"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://[fc00::1]/", "private"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 around 10.0.0.1
        # user info names no host: the host is after the last @
        ("http://example.com@127.0.0.1/", "loopback"),
        ("http://user:pass@example.com@localhost/", "loopback"),
        ("http://example.com:80@[::1]/", "loopback"),
    ],
)
def test_internal_destinations_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestinationError, match=reason):
        check_destination(url, resolver=FakeResolver())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("gopher://127.0.0.1:6379/_", "scheme must be http or https"),
        ("//example.com/", "scheme must be http or https"),
        ("http:///path", "no host"),
        ("http://:80/", "no host"),
        ("http://[::1/", "malformed"),
        ("http://example.com:99999/", "malformed"),
        ("http://127.0.0.1\\@example.com/", "backslash"),
        ("http://example.com\t.evil/", "whitespace"),
        ("http://exa mple.com/", "whitespace"),
        ("http://%31%32%37.0.0.1/", "percent-encoding"),
        ("http://1.2.3.4.5/", "malformed numeric address"),
        ("http://08.0.0.1/", "malformed numeric address"),
        ("http://0x100.0.0.1/", "malformed numeric address"),
        ("http://256.0.0.1/", "malformed numeric address"),
        ("http://unknown.example.com/", "does not resolve"),
        ("http://empty.example.com/", "does not resolve"),
        ("http://garbage.example.com/", "malformed address"),
    ],
)
def test_malformed_or_unresolvable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeDestinationError, match=message):
        check_destination(url, resolver=FakeResolver())


def test_numeric_hosts_are_judged_without_asking_the_resolver() -> None:
    def everything_is_public(host: str) -> list[str]:
        return [PUBLIC_V4]

    for url in ("http://2130706433/", "http://0x7f.0.0.1/", "http://[::1]/", "http://127.1/"):
        with pytest.raises(UnsafeDestinationError, match="loopback"):
            check_destination(url, resolver=everything_is_public)


def test_full_width_digits_are_read_as_the_resolver_reads_them() -> None:
    resolver = FakeResolver()
    with pytest.raises(UnsafeDestinationError, match="loopback"):
        check_destination("http://\uff11\uff12\uff17.0.0.1/", resolver=resolver)
    assert resolver.asked == []


def test_the_error_never_echoes_path_query_or_user_info() -> None:
    url = "http://admin:PASSWORD-1@internal.example.com/hook/PATH-TOKEN?token=QUERY-TOKEN#FRAG"
    with pytest.raises(UnsafeDestinationError) as caught:
        check_destination(url, resolver=FakeResolver())
    message = str(caught.value)
    assert "internal.example.com" in message
    assert "10.1.2.3" in message
    for secret in ("PASSWORD-1", "admin", "PATH-TOKEN", "QUERY-TOKEN", "FRAG", "/hook"):
        assert secret not in message


def test_the_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_destination("http://[::1]/", resolver=FakeResolver())


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1:8080/", ["127.0.0.1"]),
        ("http://2130706433/", ["127.0.0.1"]),
        ("http://[::ffff:127.0.0.1]/", ["127.0.0.1"]),
        ("http://[::1]/", ["::1"]),
        ("http://[::1]/", ["[::1]"]),
        ("http://localhost/", ["localhost"]),
        ("http://LOCALHOST./", ["localhost"]),
        ("http://localhost/", ["127.0.0.0/8", "::1"]),
        ("http://internal.example.com/", ["10.0.0.0/8"]),
        ("http://internal.example.com/", ["internal.example.com"]),
        ("http://rebind.example.com/", ["127.0.0.1"]),
        ("http://10.9.8.7/", ["10.0.0.0/8"]),
        ("http://[fd12:3456:789a::1]/", ["fd00::/8"]),
    ],
)
def test_the_allowlist_admits_named_hosts_addresses_and_networks(
    url: str, allow: list[str]
) -> None:
    check_destination(url, allow=allow, resolver=FakeResolver())


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://localhost/", ["127.0.0.1"]),  # ::1 is not allowed
        ("http://127.0.0.2/", ["127.0.0.1"]),
        ("http://internal.example.com/", ["10.0.0.0/16"]),
        ("http://internal.example.com/", ["example.com"]),  # no implicit subdomains
        ("http://169.254.169.254/", ["10.0.0.0/8", "localhost"]),
        ("http://[::1]/", ["127.0.0.1"]),
        ("http://[2002:7f00:1::]/", ["127.0.0.1"]),  # 6to4 does not lead to this host
    ],
)
def test_the_allowlist_admits_nothing_else(url: str, allow: list[str]) -> None:
    with pytest.raises(UnsafeDestinationError):
        check_destination(url, allow=allow, resolver=FakeResolver())


def test_an_allowed_host_name_is_not_resolved() -> None:
    resolver = FakeResolver()
    check_destination("http://mock-server:9000/", allow=["mock-server"], resolver=resolver)
    assert resolver.asked == []


def test_the_async_twin_checks_the_same_way() -> None:
    asyncio.run(check_destination_async("https://example.com/", resolver=FakeResolver()))
    with pytest.raises(UnsafeDestinationError, match="private"):
        asyncio.run(
            check_destination_async("http://internal.example.com/", resolver=FakeResolver())
        )
    asyncio.run(
        check_destination_async(
            "http://internal.example.com/", allow=["10.0.0.0/8"], resolver=FakeResolver()
        )
    )


def test_the_system_resolver_is_the_default() -> None:
    # localhost resolves from the hosts file: no network needed.
    assert "127.0.0.1" in system_resolver("localhost")
    with pytest.raises(UnsafeDestinationError, match="loopback"):
        check_destination("http://localhost:8080/")
    check_destination("http://localhost:8080/", allow=["localhost"])
