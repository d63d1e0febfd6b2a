"""Per-caller rate limits (GCRA on one DynamoDB item) and login lockout.

GCRA keeps one number per caller, the theoretical arrival time `tat`: a request at `now` is
admitted when max(tat, now) + T - now <= tau (T = 1/rate, tau = burst * T), and moves tat
to max(tat, now) + T. DynamoDB has no max(), so admission is one of two conditional
UpdateItems (see ARCHITECTURE.md): "active" (tat absent or within [now, now + tau - T]:
tat += T) or "idle" (tat in the past: tat = now + T). Which one to send is predicted from
the last state this process saw for the caller (`_hints`); a wrong guess costs a second
call, never a wrong decision, because each condition encodes the rule itself. A refused
update returns the item as it was (ALL_OLD), which gives Retry-After without a read. Times are integer microseconds.

Backoff: a refused caller is told when to come back (`blocked_until`). Coming back earlier
doubles the wait (capped); waiting as told finds the bucket refilled and starts clean.
Written by hand: no maintained library implements GCRA on DynamoDB conditional writes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib import observability, store
from chalicelib.config import Settings
from chalicelib.errors import ServiceUnavailable, TooManyRequests

logger = logging.getLogger("contact_notes.ratelimit")

US = 1_000_000  # times are integer microseconds since the epoch
_HINTS_MAX = 10_000
_hints: OrderedDict[str, dict[str, int]] = OrderedDict()
_hints_lock = threading.Lock()
_NOT_BLOCKED = "(attribute_not_exists(blocked_until) OR blocked_until <= :now)"
_ADMIT_ACTIVE = (
    "SET tat = if_not_exists(tat, :now) + :T, expires_at = :exp REMOVE blocked_until, penalty",
    f"(attribute_not_exists(tat) OR tat BETWEEN :now AND :lim) AND {_NOT_BLOCKED}",
)
_ADMIT_IDLE = (  # also a caller never seen (or whose item expired)
    "SET tat = :nowT, expires_at = :exp REMOVE blocked_until, penalty",
    f"(attribute_not_exists(tat) OR tat < :now) AND {_NOT_BLOCKED}",
)
_PENALIZE = (
    "SET blocked_until = :until, penalty = :penalty, expires_at = :exp",
    "tat > :lim OR blocked_until > :now",
)


@dataclass(frozen=True)
class Policy:
    name: str
    burst: int
    per_second: float
    backoff_max_us: int

    @property
    def interval_us(self) -> int:
        return max(1, round(US / self.per_second))

    @property
    def tolerance_us(self) -> int:
        return self.burst * self.interval_us

    @property
    def window_seconds(self) -> int:
        return max(1, math.ceil(self.tolerance_us / US))

    def header(self) -> str:
        """RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-11): quota per window."""
        return f'"{self.name}";q={self.burst};w={self.window_seconds}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    reset_seconds: int
    retry_after: int | None = None

    def headers(self, policy: Policy) -> dict[str, str]:
        values = {
            "RateLimit-Policy": policy.header(),
            "RateLimit": f'"{policy.name}";r={self.remaining};t={self.reset_seconds}',
        }
        if self.retry_after is not None:
            values["Retry-After"] = str(self.retry_after)
        return values


def policy_for(settings: Settings) -> Policy:
    return Policy(
        "default",
        settings.rate_limit_burst,
        settings.rate_limit_per_second,
        settings.rate_limit_backoff_max_seconds * US,
    )


def _now_us() -> int:
    return time.time_ns() // 1000


def _remember(key: str, state: dict[str, int]) -> None:
    with _hints_lock:
        _hints[key] = state
        _hints.move_to_end(key)
        while len(_hints) > _HINTS_MAX:
            _hints.popitem(last=False)


def reset_hints() -> None:
    with _hints_lock:
        _hints.clear()


def _limited(state: dict[str, int], policy: Policy, now: int) -> bool:
    if state.get("blocked_until", 0) > now:
        return True
    return "tat" in state and state["tat"] > now + policy.tolerance_us - policy.interval_us


def _form(state: dict[str, int] | None, policy: Policy, now: int) -> tuple[str, str]:
    """The update most likely to hold, from the last state seen for this caller.

    With nothing seen (a new container, a new caller) the guess is "idle": a caller that
    has sent nothing within one interval, or never. That is the usual case, so the first
    request a container serves for a caller is normally one call too.
    """
    if state and _limited(state, policy, now):
        return _PENALIZE
    if state and state.get("tat", 0) >= now:
        return _ADMIT_ACTIVE
    return _ADMIT_IDLE


def _penalty(state: dict[str, int], policy: Policy, now: int) -> tuple[int, int]:
    """(until, penalty) for a refused request: doubled when the caller came back too early."""
    until_admissible = max(state.get("tat", now) + policy.interval_us - policy.tolerance_us - now, US)
    came_back_early = state.get("blocked_until", 0) > now
    penalty = max(until_admissible, 2 * state.get("penalty", 0)) if came_back_early else until_admissible
    penalty = min(penalty, policy.backoff_max_us)
    return now + penalty, penalty


def _values(form: tuple[str, str], state: dict[str, int], policy: Policy, now: int) -> dict[str, int]:
    lim = now + policy.tolerance_us - policy.interval_us
    if form is _PENALIZE:
        until, penalty = _penalty(state, policy, now)
        return {":until": until, ":penalty": penalty, ":exp": until // US + 60, ":lim": lim, ":now": now}
    expires = (now + policy.tolerance_us) // US + 60
    if form is _ADMIT_IDLE:
        return {":nowT": now + policy.interval_us, ":exp": expires, ":now": now}
    return {":T": policy.interval_us, ":exp": expires, ":now": now, ":lim": lim}


def _decision(form: tuple[str, str], item: dict[str, int], policy: Policy, now: int) -> Decision:
    if form is _PENALIZE:
        retry_after = max(1, math.ceil((item["blocked_until"] - now) / US))
        return Decision(False, 0, retry_after, retry_after)
    backlog = max(item["tat"] - now, 0)
    remaining = max(0, (policy.tolerance_us - backlog) // policy.interval_us)
    return Decision(True, int(remaining), max(0, math.ceil(backlog / US)))


def check(key: str, policy: Policy) -> Decision:
    """Admit or refuse one request for `key`: normally exactly one conditional UpdateItem."""
    state = _hints.get(key)
    for _ in range(3):
        # The clock is read again for each attempt: a refusal can be due only to our own sample
        # being older than another request's write (it waited for the network, or a CPU), and
        # deciding again with that stale time would refuse a request the bucket has room for.
        now = _now_us()
        form = _form(state, policy, now)
        ok, item = store.limiter_update(key, *form, values=_values(form, state or {}, policy, now))
        if ok:
            _remember(key, item)
            return _decision(form, item, policy, now)
        state = item  # the item as it really was: choose again
        _remember(key, item)
    # Three conflicting writers in a row: refuse rather than risk admitting past the burst.
    return Decision(False, 0, 1, 1)


def check_or_fail_open(key: str, policy: Policy) -> Decision | None:
    """The limiter's verdict, or None when its table fails for another reason than an outage.

    A store that is unreachable, timing out or throttling raises ServiceUnavailable (logged
    and counted by the store): the request would only wait for the same store again, so it
    is answered 503 at once. Any other failure of the limiter's own table (missing, access
    denied) fails open: the request goes ahead, logged and counted, and on AWS the API
    Gateway usage plan still caps every caller.
    """
    try:
        return check(key, policy)
    except (ClientError, BotoCoreError, PynamoDBException) as exc:
        logger.warning("rate limiter unavailable; request allowed (fail-open): %s", type(exc).__name__)
        count_fail_open()
        return None


FAIL_OPEN_COUNT = [0]


def count_fail_open() -> None:
    FAIL_OPEN_COUNT[0] += 1
    observability.count("LimiterFailOpen")


# ---- login lockout ------------------------------------------------------------------------------


def login_key(username: str) -> str:
    return "login#" + username.strip().lower()


def ensure_login_allowed(username: str, settings: Settings) -> dict[str, int]:
    """Refuse (429) while the account is locked, whatever the password; returns the state seen.

    Known and unknown usernames are tracked alike, so lockout reveals nothing. If the
    limiter table cannot answer, logins fail closed (503): brute-force protection must not
    silently disappear.
    """
    try:
        state = store.get_login_state(login_key(username))
    except (ServiceUnavailable, ClientError, BotoCoreError, PynamoDBException) as exc:
        raise _sign_in_unavailable() from exc
    _refuse_while_locked(state)
    return state


def find_login(username: str) -> tuple[str | None, dict[str, int]]:
    """`ensure_login_allowed` for the password grant, which also needs the user id the username
    names: both in one read (a BatchGetItem over the users and limiter tables). Returns the
    user id (None for an unknown username) and the lockout state seen."""
    try:
        user_id, state = store.find_user_id_and_login_state(username, login_key(username))
    except (ServiceUnavailable, ClientError, BotoCoreError, PynamoDBException) as exc:
        raise _sign_in_unavailable() from exc
    _refuse_while_locked(state)
    return user_id, state


def _sign_in_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("Sign-in is briefly unavailable; retry shortly.", headers={"Retry-After": "1"})


def _refuse_while_locked(state: dict[str, int]) -> None:
    now = _now_us()
    if state.get("locked_until", 0) > now:
        raise TooManyRequests(
            "Too many failed sign-ins for this account; wait before trying again.",
            retry_after=math.ceil((state["locked_until"] - now) / US),
        )


def lock_seconds(failures: int, settings: Settings) -> float:
    """0 below the threshold, then base, 2 x base, 4 x base ... capped."""
    if failures < settings.login_max_failures:
        return 0.0
    exponent = failures - settings.login_max_failures
    return min(settings.login_backoff_base_seconds * 2 ** min(exponent, 40), settings.login_backoff_max_seconds)


def record_login_failure(username: str, seen: dict[str, int], settings: Settings) -> None:
    """Count a failed sign-in; from the threshold on, lock the account for a growing time.

    One conditional UpdateItem on the count seen before the password check; a concurrent
    failure that got there first is counted on top (a few tries at most).
    """
    state = seen
    for _ in range(5):
        now = _now_us()
        failures = state.get("failures", 0) + 1
        values = {
            ":one": 1,
            ":until": now + int(lock_seconds(failures, settings) * US),
            ":exp": now // US + 86_400,
            ":seen": failures - 1,
        }
        update = "ADD failures :one SET locked_until = :until, expires_at = :exp"
        condition = "attribute_not_exists(failures) OR failures = :seen" if failures == 1 else "failures = :seen"
        try:
            ok, state = store.limiter_update(login_key(username), update, condition, values)
        except (ServiceUnavailable, ClientError, BotoCoreError) as exc:
            logger.warning("could not record a failed sign-in: %s", type(exc).__name__)
            return
        if ok:
            return


def record_login_success(username: str, seen: dict[str, int]) -> None:
    if seen.get("failures"):
        store.clear_login_state(login_key(username))
