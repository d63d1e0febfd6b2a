"""A store that is unreachable, times out or throttles: a 503 problem with Retry-After on every
route, one log line per request and no traceback, the StoreUnavailable metric; never a 500.

Faults are injected at the SDK boundary (botocore event hooks on the models' client), or come
from a real socket on loopback that never answers.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from chalice.test import Client

from bench.calls import ROUTES, Route, fill, sender, world_for
from chalicelib import runtime
from chalicelib.models import dynamodb_client
from tests.conftest import ROOT, Api, CallCounter, answering, dynamodb_error, problem, unprocessed

LIMITER_TABLE = "contact-notes-rate-limits"
API_GATEWAY_TIMEOUT_SECONDS = 29
# The most the store may take of one request (the arithmetic is in chalicelib/models.py).
STORE_BUDGET_SECONDS = 20


def _table(body: bytes | str | None) -> str | None:
    return json.loads(body or b"{}").get("TableName")  # None for a transaction (no single table)


def _unreachable(**_: Any) -> None:
    raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def _read_timeout(**_: Any) -> None:
    raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1")


# Each fault as botocore meets it: (event, hook that fails the call, reason logged).
# Transport faults are raised where the request is sent, so botocore's retries run as
# they would; throttling is DynamoDB's answer, returned before the call.
FAULTS: dict[str, tuple[str, Callable[..., Any], str]] = {
    "unreachable": ("before-send.dynamodb", _unreachable, "EndpointConnectionError"),
    "read timeout": ("before-send.dynamodb", _read_timeout, "ReadTimeoutError"),
    "throttled": (
        "before-call.dynamodb",
        lambda **_: dynamodb_error("ProvisionedThroughputExceededException", "slow down"),
        "ProvisionedThroughputExceededException",
    ),
}


@contextmanager
def store_failing(fault: str, *, limiter_too: bool) -> Iterator[None]:
    """Fail the models' DynamoDB calls with `fault`: all of them, or all but the limiter's."""
    event, fail, _ = FAULTS[fault]

    def hook(**kwargs: Any) -> Any:
        body = kwargs["request"].body if "request" in kwargs else kwargs["params"].get("body")
        if limiter_too or _table(body) != LIMITER_TABLE:
            return fail(**kwargs)
        return None

    events = dynamodb_client().meta.events
    events.register_first(event, hook)
    try:
        yield
    finally:
        events.unregister(event, hook)


def _send(callers: dict[str, Api], route: Route, world: dict[str, str]) -> Any:
    """Send the route as its caller (`_prepare`)."""
    path, body = fill(route, world)
    if route.form:
        return callers[route.name].token_form(body)
    return callers[route.name].request(route.method, path, body)


def _assert_one_quiet_line(caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """Exactly one line was logged (warning or worse), naming the failure, with no traceback."""
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == [f"DynamoDB unavailable ({reason}): answering 503"]
    assert all(r.exc_info is None for r in caplog.records)


def _store_metrics(out: str) -> list[Any]:
    return [json.loads(line)["StoreUnavailable"] for line in out.splitlines() if '"StoreUnavailable"' in line]


def _prepare(alice: Api, routes: list[Route]) -> tuple[dict[str, str], dict[str, Api]]:
    """What the routes need seeded, and who sends each (bench.calls.sender): all got while the
    store is up (a token into a workspace, too)."""

    def send(method: str, path: str, body: Any) -> Any:
        return alice.request(method, path, body).json

    world = world_for(routes, alice, send)
    return world, {route.name: sender(alice, route, world) for route in routes}


@pytest.fixture
def metrics(limits: Any) -> None:
    limits(metrics_enabled=1)  # metrics are on by default only on deployed stages


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_every_route_answers_503_when_its_own_calls_fail(
    route: Route,
    alice: Api,
    metrics: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The limiter gets through, the route's own first call does not: every store function maps it."""
    world, callers = _prepare(alice, [route])
    for fault, (_, _, reason) in FAULTS.items():
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.INFO), store_failing(fault, limiter_too=False):
            reply = _send(callers, route, world)
        if not route.calls:  # nothing to ask the store beyond the limiter
            assert reply.status == route.status, (fault, reply.body)
            continue
        body = problem(reply, 503)
        assert body["type"] == "urn:contact-notes:problem:service-unavailable"
        assert int(reply.header("retry-after") or 0) >= 1, fault
        assert reason not in reply.body.decode()  # the cause is logged, not shown
        _assert_one_quiet_line(caplog, reason)
        out = capsys.readouterr().out
        assert "Traceback" not in out
        assert _store_metrics(out) == [[1.0]], fault


@pytest.mark.parametrize("fault", FAULTS)
def test_with_the_whole_store_down_the_api_answers_503_and_the_docs_still_load(
    fault: str,
    alice: Api,
    metrics: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The limiter's own call meets the outage: 503 at once (no second wait on the same store),
    on every API route, /health included; the docs and CORS preflights, which need no store,
    are served."""
    reason = FAULTS[fault][2]
    world, callers = _prepare(alice, ROUTES)
    for route in ROUTES:
        if not route.limiter and not route.calls:  # a preflight: never asks the store
            with store_failing(fault, limiter_too=True):
                assert _send(callers, route, world).status == route.status, route.name
            continue
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.INFO), store_failing(fault, limiter_too=True):
            reply = _send(callers, route, world)
        problem(reply, 503)
        assert reply.header("retry-after"), route.name
        _assert_one_quiet_line(caplog, reason)
        assert _store_metrics(capsys.readouterr().out) == [[1.0]], route.name
    with store_failing(fault, limiter_too=True):
        for page in ("/openapi.json", "/docs"):
            assert alice.client.http.get(page).status_code == 200, page


def _worst_case_seconds(config: Any, calls: int) -> float:
    """calls x (attempts x (connect + read) + botocore's pauses between attempts)."""
    attempts = config.retries["total_max_attempts"]
    # Standard mode: the i-th retry waits up to 2**(i-1) s after throttling (less otherwise).
    pauses = sum(min(2**i, 20) for i in range(attempts - 1))
    return calls * (attempts * (config.connect_timeout + config.read_timeout) + pauses)


def test_a_request_waits_for_the_store_well_inside_the_gateway_timeout(dynamodb: CallCounter) -> None:
    config = dynamodb_client().meta.config  # the client every model really uses
    assert config.retries["mode"] == "standard"
    # Imports and batches make more calls, and bound their time themselves: no transaction is
    # started after BULK_STORE_SECONDS (tests/test_imports.py shows it).
    single = [route for route in ROUTES if route.budget not in ("import, 100 rows", "batch of 100 creates")]
    calls = max(sum(route.calls.values()) + len(route.limiter) for route in single)
    assert calls == 5  # sign-in into a shared workspace, a contact delete with notes (personal sign-in: 4)
    worst = _worst_case_seconds(config, calls)
    assert worst <= STORE_BUDGET_SECONDS
    lambda_timeout = json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_functions"]["api_handler"]
    # The code answers before Lambda gives up, and Lambda before API Gateway does.
    assert STORE_BUDGET_SECONDS < lambda_timeout["lambda_timeout"] < API_GATEWAY_TIMEOUT_SECONDS


@contextmanager
def _api_against(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from app import app

    monkeypatch.setenv("DYNAMODB_ENDPOINT", endpoint)
    runtime.reset()
    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        yield Api(client)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_black_hole_store_gives_a_503_after_the_read_timeouts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that accepts connections and never answers (a hung server, a half-open proxy)."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        host, port = hole.getsockname()
        with _api_against(f"http://{host}:{port}", monkeypatch) as api, caplog.at_level(logging.INFO):
            reply, waited = _timed(lambda: api.get("/health"))
            config = dynamodb_client().meta.config
    problem(reply, 503)
    assert reply.header("retry-after") == "5"
    _assert_one_quiet_line(caplog, "ReadTimeoutError")
    attempts = config.retries["total_max_attempts"]
    assert attempts * config.read_timeout <= waited < _worst_case_seconds(config, 1) + 2.0  # 2 s for a busy machine


def test_a_refused_connection_gives_a_503_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        host, port = closed.getsockname()
        with _api_against(f"http://{host}:{port}", monkeypatch) as api:
            api.get("/health")  # settings, models and the client made first: the time is the store's
            caplog.clear()
            with caplog.at_level(logging.INFO):
                reply, waited = _timed(lambda: api.login("anyone"))
    problem(reply, 503)
    _assert_one_quiet_line(caplog, "EndpointConnectionError")
    assert waited < 2.0


def test_a_store_error_that_escapes_translation_is_still_a_503(caplog: pytest.LogCaptureFixture) -> None:
    """The HTTP edge's safety net: a store outage raised by code that did not translate it."""
    from chalice.app import Request
    from pynamodb.exceptions import GetError

    from chalicelib.web import handle_errors

    event = {"multiValueQueryStringParameters": None, "headers": {}, "pathParameters": None, "body": None,
             "stageVariables": None, "requestContext": {"httpMethod": "GET", "resourcePath": "/api/v1/x"}}  # fmt: skip
    request = Request(event)

    def view() -> Any:
        raise GetError("Failed to get item", EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))

    with caplog.at_level(logging.INFO):
        response = handle_errors(view, lambda: request)()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    _assert_one_quiet_line(caplog, "EndpointConnectionError")


def test_notes_left_unprocessed_by_a_throttled_sweep_are_a_503_and_a_retry_finishes(
    alice: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting a contact sweeps its notes with BatchWriteItem; items DynamoDB leaves
    unprocessed are a 503 (not a 500), and repeating the DELETE removes what was left."""
    contact = alice.post("/contacts", {"first_name": "Swept"}).json
    notes = [alice.post(f"/contacts/{contact['id']}/notes", {"body": f"n{i}"}).json for i in range(3)]

    with answering("BatchWriteItem", unprocessed), caplog.at_level(logging.INFO):
        reply = alice.delete(f"/contacts/{contact['id']}")
    problem(reply, 503)
    assert reply.header("retry-after") == "1"
    _assert_one_quiet_line(caplog, "BatchWriteItem left items unprocessed")
    assert all(alice.get(f"/notes/{note['id']}").status == 200 for note in notes)  # nothing lost yet
    assert alice.delete(f"/contacts/{contact['id']}").status == 404  # the retry sweeps what is left
    assert all(alice.get(f"/notes/{note['id']}").status == 404 for note in notes)
