"""A small client-side helper: retry with exponential backoff, full jitter, and Retry-After.

Usable with any HTTP library: give `call_with_retries` a function that sends the request
and returns something with `.status_code` and `.headers` (requests, httpx and urllib3
responses all do).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


class Response(Protocol):
    # Read-only members: a requests or httpx response (whose headers are a mutable mapping) matches.
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


R = TypeVar("R", bound=Response)


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: sleep uniform(0, min(cap, base * 2**attempt))."""

    base: float = 0.5
    cap: float = 30.0
    max_attempts: int = 6

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `attempt` (0-based).

        The server's Retry-After is a floor: never come back before it; jitter is added on
        top so that many clients told the same time do not return in one burst.
        """
        jittered = rand() * min(self.cap, self.base * 2**attempt)
        return jittered if retry_after is None else retry_after + jittered * 0.1


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or bad."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def call_with_retries(
    send: Callable[[], R],
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    retry_on: Collection[int] = RETRYABLE_STATUSES,
    retry_errors: tuple[type[BaseException], ...] = (),
) -> R:
    """Send, and on 429/502/503/504 wait (honouring Retry-After) and send again, a bounded number of times.

    `retry_on` narrows the statuses worth sending again: a request that is not idempotent is
    safe to resend only on 429, which the server answers before doing any work. A POST that
    carries an Idempotency-Key (`new_idempotency_key()`, the same on every try) is safe to
    resend on any of them and after a timeout or a dropped connection too: give those
    exceptions of `send` as `retry_errors` (none by default); the last one is raised.
    """
    attempts = max(1, backoff.max_attempts)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            response = send()
        except retry_errors:
            if last:
                raise
            sleep(backoff.delay(attempt, None, rand))
            continue
        if last or response.status_code not in retry_on:
            return response
        sleep(backoff.delay(attempt, retry_after_seconds(response.headers), rand))
    raise AssertionError("unreachable: the last attempt returns or raises")


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key (a random UUID): one per request, sent again with each retry of it."""
    return str(uuid.uuid4())
