"""Rate limits and login lockout, through HTTP over moto (and the limiter itself under threads)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import ratelimit
from chalicelib.config import load_settings
from chalicelib.models import RateLimitRecord, dynamodb_client
from tests.conftest import Api, CallCounter, dynamodb_error, problem
from tests.workspaces import acting_in, add, new_workspace


def headers_of(reply: Any) -> tuple[str | None, str | None]:
    return reply.header("ratelimit-policy"), reply.header("ratelimit")


def remaining(reply: Any) -> int:
    match = re.fullmatch(r'"default";r=(\d+);t=(\d+)', reply.header("ratelimit") or "")
    assert match, reply.headers
    return int(match.group(1))


def test_every_response_carries_the_headers(anon: Api, alice: Api) -> None:
    for reply in (anon.get("/health"), alice.get("/contacts"), alice.get("/contacts/nope"), anon.login("x")):
        policy, state = headers_of(reply)
        assert policy == '"default";q=100000;w=1'
        assert state is not None and re.fullmatch(r'"default";r=\d+;t=\d+', state)


def test_burst_then_429_with_retry_after(alice: Api, limits: Any) -> None:
    limits(rate_limit_burst=3, rate_limit_per_second=0.5)  # one request back every 2 s
    replies = [alice.get("/contacts") for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert [remaining(r) for r in replies] == [2, 1, 0]
    assert replies[0].header("ratelimit-policy") == '"default";q=3;w=6'
    limited = alice.get("/contacts")
    body = problem(limited, 429)
    assert limited.header("retry-after") == "2"
    assert remaining(limited) == 0
    assert limited.header("ratelimit-policy") == '"default";q=3;w=6'
    assert "retry after 2 seconds" in body["detail"]


def test_one_users_burst_does_not_limit_another(alice: Api, bob: Api, limits: Any) -> None:
    limits(rate_limit_burst=2, rate_limit_per_second=0.1)
    assert [alice.get("/contacts").status for _ in range(3)] == [200, 200, 429]
    assert [bob.get("/contacts").status for _ in range(2)] == [200, 200]


def test_a_users_workspace_tokens_share_one_bucket_and_members_keep_their_own(
    alice: Api, bob: Api, limits: Any
) -> None:
    """Limits count per user, whichever workspace the token acts in (#13)."""
    team = new_workspace(alice)
    add(alice, team, "bob", "editor")
    alice_in_team, bob_in_team = acting_in(alice, team), acting_in(bob, team)
    limits(rate_limit_burst=3, rate_limit_per_second=0.1)
    assert [r.status for r in (alice.get("/contacts"), alice_in_team.get("/contacts"))] == [200, 200]
    assert alice_in_team.get("/contacts").status == 200
    assert problem(alice.get("/contacts"), 429)["status"] == 429  # personal token: the same bucket
    assert problem(alice_in_team.get("/contacts"), 429)["status"] == 429
    assert [bob_in_team.get("/contacts").status for _ in range(3)] == [200, 200, 200]  # same workspace, own bucket


def test_anonymous_requests_count_per_client_ip(anon: Api, alice: Api, limits: Any) -> None:
    limits(rate_limit_burst=2, rate_limit_per_second=0.1)
    assert [anon.get("/health").status for _ in range(3)] == [200, 200, 429]
    assert alice.get("/contacts").status == 200  # the signed-in user has a bucket of their own


def test_refill_after_waiting_as_told(alice: Api, limits: Any) -> None:
    limits(rate_limit_burst=1, rate_limit_per_second=2)
    assert alice.get("/contacts").status == 200
    limited = alice.get("/contacts")
    assert limited.status == 429
    time.sleep(int(limited.header("retry-after") or "1"))  # the client honours Retry-After
    again = alice.get("/contacts")
    assert again.status == 200
    # It starts clean: the next refusal is not a doubled one.
    refused = alice.get("/contacts")
    assert refused.status == 429
    assert refused.header("retry-after") == "1"


def test_backoff_doubles_while_hammering_and_is_capped(alice: Api, limits: Any) -> None:
    limits(rate_limit_burst=1, rate_limit_per_second=0.2, rate_limit_backoff_max_seconds=30)
    assert alice.get("/contacts").status == 200
    waits = [int(alice.get("/contacts").header("retry-after") or 0) for _ in range(5)]
    assert waits == [5, 10, 20, 30, 30]


def test_limiter_adds_one_call_and_a_refusal_no_more(alice: Api, limits: Any, dynamodb: CallCounter) -> None:
    limits(rate_limit_burst=1, rate_limit_per_second=0.1)
    dynamodb.reset()
    assert alice.get("/contacts").status == 200
    assert dynamodb.limiter_calls == ["UpdateItem"]
    dynamodb.reset()
    assert alice.get("/contacts").status == 429
    assert dynamodb.limiter_calls == ["UpdateItem"]
    assert dynamodb.calls == []  # a refused request never reaches the data


def test_a_new_container_needs_one_call_for_a_new_or_idle_caller(
    alice: Api, limits: Any, dynamodb: CallCounter
) -> None:
    dynamodb.reset()
    assert alice.get("/contacts").status == 200  # a caller never seen
    assert dynamodb.limiter_calls == ["UpdateItem"]
    limits()  # a new container: nothing remembered; alice is idle (the interval is 10 µs)
    dynamodb.reset()
    assert alice.get("/contacts").status == 200
    assert dynamodb.limiter_calls == ["UpdateItem"]


def test_a_new_container_meeting_a_caller_mid_burst_still_counts_right(
    alice: Api, limits: Any, dynamodb: CallCounter
) -> None:
    limits(rate_limit_burst=3, rate_limit_per_second=0.1)
    assert remaining(alice.get("/contacts")) == 2
    limits(rate_limit_burst=3, rate_limit_per_second=0.1)  # another container: no memory of her
    dynamodb.reset()
    reply = alice.get("/contacts")
    assert remaining(reply) == 1
    assert dynamodb.limiter_calls == ["UpdateItem", "UpdateItem"]  # the guess was wrong: one retry


def test_a_new_container_meeting_a_blocked_caller_still_doubles_the_wait(
    alice: Api, limits: Any, dynamodb: CallCounter
) -> None:
    policy = {"rate_limit_burst": 1, "rate_limit_per_second": 0.2, "rate_limit_backoff_max_seconds": 30}
    limits(**policy)
    assert alice.get("/contacts").status == 200
    assert alice.get("/contacts").header("retry-after") == "5"
    limits(**policy)  # another container: no memory of her
    dynamodb.reset()
    refused = alice.get("/contacts")
    assert refused.status == 429
    assert refused.header("retry-after") == "10"  # she came back early: doubled, as in one container
    assert dynamodb.limiter_calls == ["UpdateItem", "UpdateItem"]
    assert dynamodb.calls == []


def test_limiter_state_is_stored_with_a_ttl(alice: Api, limits: Any) -> None:
    limits(rate_limit_burst=2, rate_limit_per_second=1)
    alice.get("/contacts")
    record = RateLimitRecord.get(f"user#{alice.user['id']}", consistent_read=True)
    assert record.tat is not None and record.tat > time.time() * 1_000_000
    assert record.expires_at is not None


@pytest.fixture
def atomic_moto(dynamodb: CallCounter) -> Iterator[None]:
    """Make moto execute one DynamoDB call at a time, as DynamoDB does for each item.

    moto evaluates a condition and applies the update in plain Python, so two threads can
    interleave inside one call; real DynamoDB never does. The lock spans each call.
    """
    lock = threading.Lock()
    events = dynamodb_client().meta.events

    def acquire(**_: Any) -> None:
        lock.acquire()

    def release(**_: Any) -> None:
        lock.release()

    events.register_first("before-send.dynamodb", acquire)
    events.register("after-call.dynamodb", release)
    events.register("after-call-error.dynamodb", release)
    yield
    for name, handler in (("before-send", acquire), ("after-call", release), ("after-call-error", release)):
        events.unregister(f"{name}.dynamodb", handler)


def test_concurrent_requests_never_exceed_the_burst(atomic_moto: None) -> None:
    policy = ratelimit.Policy("default", burst=5, per_second=0.01, backoff_max_us=60_000_000)
    outcomes: list[bool] = []
    start = threading.Barrier(8)

    def caller() -> None:
        start.wait()
        for _ in range(6):
            outcomes.append(ratelimit.check("user#concurrent", policy).allowed)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 48
    assert outcomes.count(True) == 5


def test_a_request_whose_clock_sample_is_overtaken_is_still_admitted(dynamodb: CallCounter) -> None:
    """Two requests of one caller were admitted between this request reading the clock and its
    update reaching the table (it waited for the network, or a CPU). One slot is left: this
    request must get it, not be refused for its own stale sample."""
    policy = ratelimit.Policy("default", burst=3, per_second=0.01, backoff_max_us=60_000_000)
    events = dynamodb_client().meta.events
    overtaken: list[bool] = []

    def others_first(**_: Any) -> None:
        if not overtaken:  # once, before this request's first update is sent
            overtaken.append(True)
            assert [ratelimit.check("user#raced", policy).allowed for _ in range(2)] == [True, True]

    events.register_first("before-send.dynamodb.UpdateItem", others_first)
    try:
        decision = ratelimit.check("user#raced", policy)
    finally:
        events.unregister("before-send.dynamodb.UpdateItem", others_first)
    assert overtaken and decision.allowed
    assert not ratelimit.check("user#raced", policy).allowed  # and the burst is spent


# ---- limiter table failure ------------------------------------------------------------------


def _fail_limiter_calls(code: str) -> Any:
    def hook(params: dict[str, Any], **_: Any) -> Any:
        # before-call sees the serialized request: the table name is in its JSON body. A batch
        # naming the table fails as a whole (IAM authorizes a batch on every table it names).
        sent = json.loads(params.get("body") or b"{}")
        if "contact-notes-rate-limits" in (sent.get("TableName"), *sent.get("RequestItems", {})):
            return dynamodb_error(code)
        return None

    return hook


@pytest.fixture(params=["AccessDeniedException"])
def limiter_down(dynamodb: CallCounter, request: pytest.FixtureRequest) -> Iterator[None]:
    """The limiter's table fails (by default as one the function may not use) while the rest works."""
    events = dynamodb_client().meta.events
    hook = _fail_limiter_calls(request.param)
    events.register_first("before-call.dynamodb", hook)
    yield
    events.unregister("before-call.dynamodb", hook)


def test_limiter_failure_fails_open_logged_and_counted(
    alice: Api, limiter_down: None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], limits: Any
) -> None:
    """A limiter table that fails for another reason than an outage does not take the API down."""
    limits(metrics_enabled="1")  # metrics are on by default only on deployed stages
    before = ratelimit.FAIL_OPEN_COUNT[0]
    with caplog.at_level("WARNING", logger="contact_notes.ratelimit"):
        reply = alice.get("/contacts")
    assert reply.status == 200
    assert reply.header("ratelimit-policy") is not None
    assert reply.header("ratelimit") is None  # unknown while the limiter is down: not invented
    assert any("fail-open" in r.getMessage() for r in caplog.records)
    assert ratelimit.FAIL_OPEN_COUNT[0] == before + 1
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "LimiterFailOpen" in line]
    assert metrics, "no LimiterFailOpen metric was emitted"
    assert metrics[0]["LimiterFailOpen"] in (1, 1.0, [1.0])


def test_limiter_failure_closes_sign_in(anon: Api, limiter_down: None) -> None:
    anon.register("carla")
    reply = anon.login("carla")
    problem(reply, 503)
    assert reply.header("retry-after") == "1"


@pytest.mark.parametrize("limiter_down", ["ProvisionedThroughputExceededException"], indirect=True)
def test_throttled_limiter_sheds_load_with_a_503(alice: Api, limiter_down: None) -> None:
    """Throttling is an outage of the store, not of the limiter: 503 at once, no call to a busy store."""
    for path in ("/contacts", "/health"):
        reply = alice.get(path)
        problem(reply, 503)
        assert reply.header("retry-after") == "1"


# ---- login lockout ------------------------------------------------------------------------------


def test_lock_grows_exponentially_and_is_capped() -> None:
    settings = load_settings(
        {"LOGIN_MAX_FAILURES": "5", "LOGIN_BACKOFF_BASE_SECONDS": "1", "LOGIN_BACKOFF_MAX_SECONDS": "900"}
    )
    assert [ratelimit.lock_seconds(n, settings) for n in range(1, 17)] == [
        0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900,
    ]  # fmt: skip


@pytest.mark.parametrize("username", ["dora", "ghost_user"])  # a real account, and one that does not exist
def test_login_lockout(anon: Api, limits: Any, username: str) -> None:
    limits(login_max_failures=3, login_backoff_base_seconds=1, login_backoff_max_seconds=2)
    anon.register("dora")
    for _ in range(3):
        problem(anon.login(username, "wrong password"), 401)
    locked = anon.login(username)  # even the right password, while locked
    body = problem(locked, 429)
    assert locked.header("retry-after") == "1"
    assert "sign-ins" in body["detail"]
    time.sleep(1.05)
    problem(anon.login(username, "wrong password"), 401)  # 4th failure: locked twice as long
    assert anon.login(username).header("retry-after") == "2"
    time.sleep(2.05)
    if username == "dora":
        assert anon.login(username).status == 200  # accepted after the lock
        problem(anon.login(username, "wrong password"), 401)  # and the count starts again
        assert anon.login(username).status == 200
    else:
        problem(anon.login(username), 401)


def test_unknown_user_lockout_is_indistinguishable(anon: Api, limits: Any) -> None:
    limits(login_max_failures=2, login_backoff_base_seconds=5)
    anon.register("erin")
    replies = {name: [anon.login(name, "wrong password") for _ in range(3)] for name in ("erin", "nobody_here")}

    def shape(reply: Any) -> tuple[int, str | None, dict[str, Any]]:
        body = {k: v for k, v in reply.json.items() if k != "request_id"}
        return reply.status, reply.header("retry-after"), body

    assert [shape(r) for r in replies["erin"]] == [shape(r) for r in replies["nobody_here"]]
    assert [r.status for r in replies["erin"]] == [401, 401, 429]
