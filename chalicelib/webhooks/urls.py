"""Where a webhook may be delivered: the guard against server-side request forgery.

A deployed stage delivers only over https to a host name (no IP literal) whose every address is
public: not private, loopback, link-local (169.254.169.254, the instance metadata service, is
one), unique-local, multicast, reserved, unspecified or shared, nor such an address inside an
IPv6 one (IPv4-mapped, 6to4, Teredo, NAT64). The check runs when an endpoint is registered or
changed and again before every attempt, and the attempt connects to the very address that was
checked (chalicelib.webhooks.delivery), so a name that resolves elsewhere later (DNS rebinding)
changes nothing; TLS still verifies the certificate against the name. The local stage also
delivers to http(s)://127.0.0.1 and localhost on any port, so a developer can receive on their
own machine. Everything here happens before any connection is made.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.config import Settings

LOOPBACK_HOSTS = {"localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1"}
MAX_URL_CHARS = 2048
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """The URL may not be delivered to; the message says why (never the addresses found)."""

    retryable = False


class Unresolved(Refused):
    """The name does not resolve now: at registration a refusal, at delivery worth a retry."""

    retryable = True


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `address`, speak to `host` (Host header, SNI, certificate)."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def check(url: str, settings: Settings) -> Target:
    """The destination a URL names, once it is allowed; Refused (or Unresolved) otherwise."""
    scheme, host, port, path = _parts(url)
    if settings.is_local and host in LOOPBACK_HOSTS:
        return Target(scheme, host, port, path, LOOPBACK_HOSTS[host])
    if scheme != "https":
        raise Refused("must be an https:// URL" + (" (or http://127.0.0.1 or localhost)" if settings.is_local else ""))
    if _literal(host) is not None:
        raise Refused("must name a host, not an IP address")
    if settings.webhook_loopback_only:
        raise Refused("this server delivers only to http://127.0.0.1 or localhost (WEBHOOK_LOOPBACK_ONLY)")
    return Target(scheme, host, port, path, _public_address(host, port))


def _parts(url: str) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_CHARS or not url.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise Refused("must be an ASCII URL without spaces (an international name in its xn-- form)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Refused("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not carry credentials (user:password@)")
    host = parts.hostname.rstrip(".")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _public_address(host: str, port: int) -> str:
    """The address to connect to: every address the name resolves to must be public."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Unresolved("the host name does not resolve") from None
    addresses = []
    for family, *_, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = not_public(address)
        if why is not None:
            raise Refused(f"the host resolves to a {why} address; only public addresses are allowed")
        addresses.append(address)
    if not addresses:
        raise Unresolved("the host name does not resolve")
    addresses.sort(key=lambda address: address.version)  # IPv4 first: Lambda has no IPv6 egress by default
    chosen = addresses[0]
    if isinstance(chosen, ipaddress.IPv6Address) and chosen.ipv4_mapped is not None:
        return str(chosen.ipv4_mapped)
    return str(chosen)


def not_public(address: IPAddress) -> str | None:
    """What kind of non-public address it is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded(address):
            why = not_public(inner)
            if why is not None:
                return why
        if address.scope_id:
            return "link-local"
    for test, kind in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, test):
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if not address.is_global:
        return "non-public"
    return None


def _embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: mapped, 6to4, Teredo, NAT64."""
    inner: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        inner.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        inner.append(address.sixtofour)
    if address.teredo is not None:
        inner.extend(address.teredo)
    if any(address in network for network in _NAT64):
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return inner
