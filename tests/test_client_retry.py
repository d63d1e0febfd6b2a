"""The client retry helper, against the real API (test client) and with scripted answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from contactnotes_client import Backoff, call_with_retries, new_idempotency_key, retry_after_seconds
from tests.conftest import Api


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def test_full_jitter_grows_exponentially_within_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=4.0)
    assert [backoff.delay(n, None, rand=lambda: 1.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [backoff.delay(n, None, rand=lambda: 0.0) for n in range(3)] == [0.0, 0.0, 0.0]


def test_retry_after_is_a_floor() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    assert backoff.delay(0, 5.0, rand=lambda: 0.0) == 5.0
    assert 5.0 <= backoff.delay(3, 5.0, rand=lambda: 1.0) <= 6.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), (" 12 ", 12.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("soon", None), ("-1", None)],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    now = 1445412480.0  # 07:28:00 on that date
    assert retry_after_seconds({"Retry-After": value}, now=now) == seconds
    assert retry_after_seconds({}, now=now) is None


def test_retries_until_success_honouring_retry_after() -> None:
    answers = iter([Answer(429, {"Retry-After": "2"}), Answer(503), Answer(200)])
    slept: list[float] = []
    result = call_with_retries(lambda: next(answers), Backoff(base=1, cap=10), sleep=slept.append, rand=lambda: 0.5)
    assert result.status_code == 200
    assert slept == [2.05, 1.0]


def test_gives_up_after_max_attempts() -> None:
    calls: list[int] = []

    def send() -> Answer:
        calls.append(1)
        return Answer(429, {"Retry-After": "1"})

    result = call_with_retries(send, Backoff(max_attempts=3), sleep=lambda _: None, rand=lambda: 0.0)
    assert result.status_code == 429
    assert len(calls) == 3


def test_does_not_retry_other_errors() -> None:
    calls: list[int] = []

    def send() -> Answer:
        calls.append(1)
        return Answer(404)

    assert call_with_retries(send, sleep=lambda _: None).status_code == 404
    assert len(calls) == 1


def test_retries_the_errors_it_is_given_and_raises_the_last() -> None:
    outcomes: list[Any] = [TimeoutError("lost"), ConnectionResetError("dropped"), Answer(201)]
    slept: list[float] = []

    def send() -> Answer:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = call_with_retries(send, Backoff(base=1, cap=10), sleep=slept.append, rand=lambda: 0.5,
                               retry_errors=(TimeoutError, ConnectionError))  # fmt: skip
    assert result.status_code == 201 and slept == [0.5, 1.0]

    def always_lost() -> Answer:
        raise TimeoutError("lost")

    with pytest.raises(TimeoutError):
        call_with_retries(always_lost, Backoff(max_attempts=3), sleep=lambda _: None, retry_errors=(TimeoutError,))
    with pytest.raises(TimeoutError):  # not given: raised at once, as before
        call_with_retries(always_lost, sleep=lambda _: pytest.fail("no retry without retry_errors"))


def test_a_keyed_post_whose_answer_was_lost_is_retried_and_done_once(alice: Api) -> None:
    """The first try is done by the server but its answer lost (raised here as a timeout): the
    retry with the same key gets the stored answer, and there is one contact."""
    key = {"Idempotency-Key": new_idempotency_key()}
    tries: list[Any] = []

    def send() -> Answer:
        reply = alice.post("/contacts", {"first_name": "Once"}, headers=key)
        tries.append(reply)
        if len(tries) == 1:
            raise TimeoutError("the answer was lost on the way")
        return Answer(reply.status, reply.headers)

    result = call_with_retries(send, sleep=lambda _: None, retry_errors=(TimeoutError,))
    assert result.status_code == 201 and result.headers.get("Idempotent-Replayed") == "true"
    assert tries[0].json == tries[1].json
    assert [c["id"] for c in alice.get("/contacts").json["items"]] == [tries[0].json["id"]]


def test_against_the_api_rate_limiter(alice: Api, limits: Any) -> None:
    """A limited caller that follows the helper is told Retry-After and gets through after waiting."""
    limits(rate_limit_burst=1, rate_limit_per_second=2)
    slept: list[float] = []

    def send() -> Any:
        reply = alice.get("/contacts")
        return Answer(reply.status, reply.headers)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)  # the real wait the server asked for

    assert send().status_code == 200
    assert call_with_retries(send, Backoff(base=0.1, cap=1), sleep=sleep, rand=lambda: 0.0).status_code == 200
    assert slept == [1.0]
