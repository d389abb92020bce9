"""Where webhooks may go: the checks on a webhook URL, when it is configured and at delivery.

Always refused, whatever the settings: a scheme other than http/https, no host,
credentials (``user:pass@``), control characters or whitespace, more than 2000 characters,
and a numeric host written other than as a dotted quad (``0x7f000001``, ``2130706433``,
``0177.0.0.1``, ``127.1``): nobody writes those but to slip past a filter.

Refused unless ``SHARPEN_WEBHOOK_ALLOW_PRIVATE=true``: every address that is not public
unicast — loopback, private (RFC 1918, IPv6 ULA), link-local (169.254.0.0/16, where cloud
metadata services answer; fe80::/10), unspecified, multicast, reserved, shared
(100.64.0.0/10), documentation ranges, IPv4-mapped IPv6 and 6to4 of such an address —
whether written in the URL or what its name resolves to (if *any* address of the name is
refused, the URL is). A name is resolved when an experiment's spec is submitted, so a
mistake is refused at once, and again at every delivery attempt, which then connects to
the very address just checked (the ``Host`` header and TLS name stay the URL's), so a name
that re-resolves elsewhere later (DNS rebinding) gets nowhere. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from service.errors import FieldError, field_error

__all__ = [
    "MAX_URL_CHARS",
    "Resolver",
    "Target",
    "TargetRefused",
    "check_url",
    "check_url_syntax",
    "refused_targets",
    "resolve_target",
    "system_resolver",
]

MAX_URL_CHARS = 2000
RESOLVE_TIMEOUT_S = 5.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses`` (IP strings); raises ``OSError`` when the name does not
resolve."""

_NUMERIC_PART = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetRefused(ValueError):
    """A webhook URL sharpen will not send to; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL and the addresses its host had when checked (empty: not resolved,
    private addresses allowed)."""

    url: str
    host: str
    port: int
    addresses: list[str] = field(default_factory=list)


def check_url_syntax(url: str) -> SplitResult:
    """The parts of ``url`` if it passes the checks that hold whatever the settings."""
    if len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"longer than {MAX_URL_CHARS} characters")
    if _CONTROL_OR_SPACE.search(url):
        raise TargetRefused("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise TargetRefused(f"{url[:100]!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("carries credentials (user:password@): sign with the secret instead")
    host = parts.hostname
    if not host:
        raise TargetRefused("has no host")
    if port == 0:
        raise TargetRefused("port 0 is not a port")
    _refuse_odd_numeric_host(host)
    return parts


def _refuse_odd_numeric_host(host: str) -> None:
    if ":" in host:
        return  # IPv6 literal: ipaddress parses it below
    labels = host.rstrip(".").split(".")
    if all(_NUMERIC_PART.fullmatch(label) for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise TargetRefused(
                f"host {host!r} is a number in an unusual form: write the address as a dotted quad"
            ) from None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def address_problem(address: Address) -> str | None:
    """Why ``address`` is not a public unicast address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        embedded = address.sixtofour
        if embedded is not None and address_problem(embedded) is not None:
            return "a 6to4 address of a non-public IPv4 address"
        if address.is_site_local:
            return "a site-local address"
    for attribute, text in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address (cloud metadata services answer there)"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, attribute):
            return text
    if not address.is_global:
        return "not a public address"
    return None


def _check_address(host: str, address: Address) -> None:
    problem = address_problem(address)
    if problem is not None:
        shown = host if host == str(address) else f"{host} ({address})"
        raise TargetRefused(
            f"{shown} is {problem}; set SHARPEN_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        )


def check_url(url: str, *, allow_private: bool) -> None:
    """Every check that needs no name resolution (used on settings, which load offline)."""
    parts = check_url_syntax(url)
    address = _literal(parts.hostname or "")
    if address is not None and not allow_private:
        _check_address(parts.hostname or "", address)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives ``host`` (TCP), in its order."""
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_target(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Target:
    """Check ``url`` and, unless private addresses are allowed, resolve and check its host.

    Raises :class:`TargetRefused` for a URL or an address sharpen will not send to, and
    ``OSError`` (or ``TimeoutError``) when the name does not resolve now.
    """
    parts = check_url_syntax(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    if allow_private:
        return Target(url, host, port)
    literal = _literal(host)
    if literal is not None:
        _check_address(host, literal)
        return Target(url, host, port, [str(literal)])
    addresses = await resolver(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for found in addresses:
        # Strip an IPv6 zone ("fe80::1%eth0") before parsing; it is link-local anyway.
        _check_address(host, ipaddress.ip_address(found.split("%", 1)[0]))
    return Target(url, host, port, addresses)


async def refused_targets(
    urls: Sequence[str],
    *,
    field: str,
    allow_private: bool,
    resolver: Resolver = system_resolver,
) -> list[FieldError]:
    """One error per URL of ``urls`` that :func:`resolve_target` refuses or cannot resolve,
    each naming ``field.<index>``."""
    errors = []
    for index, url in enumerate(urls):
        try:
            await resolve_target(url, allow_private=allow_private, resolver=resolver)
        except TargetRefused as exc:
            errors.append(field_error(f"{field}.{index}", str(exc)))
        except OSError as exc:
            reason = str(exc) or type(exc).__name__
            errors.append(field_error(f"{field}.{index}", f"the host does not resolve: {reason}"))
    return errors
