"""Cross-origin requests from browsers (the Fetch standard's CORS protocol).

Only the origins listed in CORS_ALLOWED_ORIGINS get CORS headers, and each gets its own origin
back, never `*`. Every answer of the API (errors and 429s included, so that a browser can read
the problem) passes through `decorate`; preflights are answered by `preflight_headers`. With
the list empty (the default) no answer carries a CORS header. Written by hand: Chalice's own
CORSConfig allows one fixed origin per route, and the decision is a few set lookups.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

# What a script may read from an answer besides the CORS-safelisted headers.
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Link",
    "Content-Disposition",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "X-Request-Id",
)
# The request headers the API reads, beyond the CORS-safelisted ones.
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key")
# How long a browser may reuse a preflight's answer; Chromium caps it at 2 hours.
PREFLIGHT_MAX_AGE_SECONDS = 7200
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(text: str) -> tuple[str, ...]:
    """CORS_ALLOWED_ORIGINS ("https://app.example.com, http://localhost:5173") as the browser
    serializes each origin: scheme, host in lower case, default port left out.

    Raises ValueError naming the entry that is not an origin (a path, a wildcard, "null").
    """
    origins: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            origins.append(_origin(entry))
    return tuple(dict.fromkeys(origins))


def _origin(entry: str) -> str:
    explain = f"{entry!r} is not an origin such as https://app.example.com"
    if "*" in entry:
        raise ValueError(f"{explain} (list each origin: tokens are sent in Authorization, so no wildcard)")
    try:
        parts = urlsplit(entry)
        port = parts.port
    except ValueError:
        raise ValueError(explain) from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise ValueError(explain)
    if parts.path not in ("", "/") or parts.query or parts.fragment or entry.endswith("/"):
        raise ValueError(f"{explain} (no path or trailing slash: a browser sends the origin alone)")
    try:  # a browser sends an internationalized host name in its ASCII (punycode) form
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(explain) from None
    host = host if ":" not in host else f"[{host}]"
    shown_port = "" if port in (None, DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


def _vary_origin(headers: dict[str, str]) -> None:
    present = headers.get("Vary", "")
    names = [name.strip() for name in present.split(",") if name.strip()]
    if not any(name.lower() == "origin" for name in names):
        headers["Vary"] = ", ".join([*names, "Origin"])


def decorate(headers: dict[str, str], origin: str | None, allowed: Iterable[str]) -> None:
    """Add to an answer's headers what lets the calling page read it, if its origin is allowed.

    Whenever CORS is on, the answer varies by Origin (a cache must not hand one origin's
    answer to another), whether or not this origin is allowed.
    """
    allowed = tuple(allowed)
    if not allowed:
        return
    _vary_origin(headers)
    if origin is not None and origin in allowed:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)


def preflight_headers(
    origin: str | None, requested_method: str | None, methods: Iterable[str], allowed: Iterable[str]
) -> dict[str, str]:
    """The CORS part of the answer to OPTIONS. A preflight (it names the method it asks for)
    from an allowed origin, for a method this resource has, gets permission; any other
    preflight gets none, and the browser then refuses to send the request. An OPTIONS request
    that is not a preflight is answered like any other request."""
    headers: dict[str, str] = {}
    decorate(headers, origin, allowed)
    if requested_method is None:
        return headers
    methods = tuple(methods)
    if "Access-Control-Allow-Origin" not in headers or requested_method not in methods:
        return {name: value for name, value in headers.items() if name == "Vary"}
    headers.pop("Access-Control-Expose-Headers")  # a preflight's answer is not read by the page
    headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_REQUEST_HEADERS)
    headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    return headers
