"""Fixtures: every test runs over moto (no AWS, no network) through Chalice's test client."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from bench.calls import CallCounter, counting
from chalicelib import runtime
from chalicelib.models import create_tables, dynamodb_client
from devtools import moto_transactions
from devtools.gateway import ParityGateway
from tests.api import API, Api, Reply

__all__ = ["API", "Api", "CallCounter"]  # re-exported: the tests import them from here

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-only-secret-0123456789abcdef0123456789"
# argon2id at 1 MiB and one round (about 1 ms) instead of OWASP's 19 MiB and two (about 19
# ms): the suite signs users up about a thousand times. Only the local stage accepts it
# (chalicelib.config); tests/test_auth.py checks the default and the refusal.
TEST_PASSWORD_HASH = {"PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_ROUNDS": "1"}


class SocketGuard:
    """Nothing leaves loopback: every socket connect outside 127.0.0.0/8, and every name resolved
    for real (a DNS query leaves the machine), is refused and fails the test that made it (at its
    teardown, even when the code under test swallowed the error). `connects` lists the addresses
    connected to (or refused) during the current test, for tests that assert none was tried."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def note(self, address: Any) -> None:
        """Record a connect to `address` (a sockaddr); refuse it outside loopback."""
        if not isinstance(address, tuple):
            return  # AF_UNIX and the like: not the network
        host, port = str(address[0]), int(address[1])
        with self._lock:
            self.connects.append((host, port))
        if not _loopback(host):
            self.refuse(f"connect to {host}:{port}")

    def refuse(self, what: str) -> None:
        with self._lock:
            self.violations.append(what)
        raise PermissionError(f"the test suite's socket guard refused a {what} (only 127.0.0.0/8 is allowed)")

    def take(self) -> list[str]:
        with self._lock:
            found, self.violations = self.violations, []
            self.connects = []
        return found


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in ipaddress.ip_network("127.0.0.0/8")


GUARD = SocketGuard()
_NUMERIC_OR_LOCAL = {"localhost", "", None}


@pytest.fixture(scope="session", autouse=True)
def _socket_guard_installed() -> Iterator[None]:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection, real_getaddrinfo = socket.create_connection, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        GUARD.note(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        GUARD.note(address)
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not _loopback(str(address[0])) and address[0] not in _NUMERIC_OR_LOCAL:
            GUARD.note(address)
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _NUMERIC_OR_LOCAL and not _numeric(str(name)):
            GUARD.refuse(f"real name resolution of {name!r} (stub socket.getaddrinfo)")
        return real_getaddrinfo(host, *args, **kwargs)

    _replace(
        {"connect": connect, "connect_ex": connect_ex},
        {"create_connection": create_connection, "getaddrinfo": getaddrinfo},
    )
    try:
        yield
    finally:
        _replace({"connect": real_connect, "connect_ex": real_connect_ex},
                 {"create_connection": real_create_connection, "getaddrinfo": real_getaddrinfo})  # fmt: skip


def _replace(methods: dict[str, Any], functions: dict[str, Any]) -> None:
    for name, method in methods.items():
        setattr(socket.socket, name, method)
    for name, function in functions.items():
        setattr(socket, name, function)


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def socket_guard() -> Iterator[SocketGuard]:
    """Fails the test that tried to reach beyond loopback; see SocketGuard."""
    GUARD.take()
    yield GUARD
    violations = GUARD.take()
    if violations:
        pytest.fail("traffic beyond loopback was attempted: " + "; ".join(violations[:5]), pytrace=False)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("JWT_SECRET", TEST_SECRET)
    monkeypatch.setenv("STAGE", "local")
    for name, value in TEST_PASSWORD_HASH.items():
        monkeypatch.setenv(name, value)
    # Most tests make many requests quickly as one user; the rate-limit tests set their own.
    monkeypatch.setenv("RATE_LIMIT_BURST", "100000")
    monkeypatch.setenv("RATE_LIMIT_PER_SECOND", "100000")
    runtime.reset()
    yield
    runtime.reset()


# Test files whose tests must run on one worker (pytest-xdist): those that share one local
# stack, and the packaging tests (which package each stage once per worker). xdist's own
# `--dist loadgroup` cannot do it here: it renames items through an attribute pytest 9 no
# longer reads, so its xdist_group marks group nothing (pytest 9.2, xdist 3.8.0).
WORKER_GROUPS = {
    "tests/test_contract.py": "stack",
    "tests/test_docs_browser.py": "stack",
    "tests/test_gateway_parity.py": "stack",
    "tests/test_generated_client.py": "stack",
    "tests/test_package.py": "package",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Like `--dist load`, except that each of WORKER_GROUPS goes to one worker as a whole."""
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return WORKER_GROUPS.get(nodeid.split("::", 1)[0], nodeid)

    return Grouped(config, log)


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[Any]:
    """One `make run` stack for the tests that only need one to talk to (the contract test, the
    browser, the gateway table, the generated client), started once: they all run on one worker
    (WORKER_GROUPS). Limits are high: the fuzzer sends thousands of requests, and the limiter has
    tests of its own."""
    from tests.stack import running_stack

    with running_stack(RATE_LIMIT_BURST="100000", RATE_LIMIT_PER_SECOND="100000") as running:
        yield running


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set settings for one test (rate limits, mostly) (the environment is read on first use)."""

    def apply(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), str(value))
        runtime.reset()

    return apply


@pytest.fixture
def dynamodb() -> Iterator[CallCounter]:
    """Fresh moto tables; every DynamoDB call is counted, and a Scan fails the test."""
    moto_transactions.install()  # the emulator `make run` uses (devtools/moto_transactions.py)
    with mock_aws():
        create_tables(runtime.settings())
        with counting() as counter:
            yield counter
        assert counter.scans == 0, "a Scan ran: no request path may scan"


@pytest.fixture
def chalice_client(dynamodb: CallCounter) -> Iterator[Client]:
    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        # API Gateway's own answers (no token, no such route, too large ...) as deployed, as
        # `make run` gives them: the client's gateway is Chalice's, the rest of it is kept.
        client.http._local_gateway = ParityGateway(app, client.http._config)
        yield client


@pytest.fixture
def anon(chalice_client: Client) -> Api:
    return Api(chalice_client)


@pytest.fixture
def alice(anon: Api) -> Api:
    return anon.sign_up("alice")


@pytest.fixture
def bob(anon: Api) -> Api:
    return anon.sign_up("bob")


def dynamodb_error(code: str, message: str = "injected", **extra: Any) -> tuple[object, dict[str, Any]]:
    """An error answer as DynamoDB gives it, for a botocore before-call hook to return.

    Returning it from the hook short-circuits the call at the SDK boundary: the fault is
    DynamoDB's, as the code under test sees it, and none of our code is patched.
    """
    http = type("Http", (), {"status_code": 400, "headers": {}})()
    return http, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}, **extra}


def unprocessed(request: dict[str, Any]) -> tuple[object, dict[str, Any]]:
    """DynamoDB's answer when throttling left a whole BatchWriteItem unprocessed (a 200)."""
    http = type("Http", (), {"status_code": 200, "headers": {}})()
    return http, {"UnprocessedItems": request["RequestItems"], "ResponseMetadata": {"HTTPStatusCode": 200}}


@contextmanager
def answering(operation: str, answer: Callable[[dict[str, Any]], Any], table: str | None = None) -> Iterator[None]:
    """DynamoDB's answer to `operation` (on `table`, if named) replaced by answer(request)
    whenever that returns one: at the SDK boundary, before the call is sent (nothing of
    ours patched). `answer` returns None to let the call through."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        request = json.loads(params["body"])
        if table in (None, request.get("TableName"), *request.get("RequestItems", {})):
            return answer(request)
        return None

    events = dynamodb_client().meta.events
    events.register_first(f"before-call.dynamodb.{operation}", hook)
    try:
        yield
    finally:
        events.unregister(f"before-call.dynamodb.{operation}", hook)


@contextmanager
def before_first(operation: str, act: Callable[[], None], table: str | None = None) -> Iterator[None]:
    """Run `act` just before the next DynamoDB `operation` (on `table`, if named) is sent: a
    competing request lands between what a request read and what it writes, at the SDK
    boundary (nothing of ours patched)."""
    events = dynamodb_client().meta.events
    event = f"before-parameter-build.dynamodb.{operation}"
    fired: list[bool] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if not fired and table in (None, params.get("TableName")):
            fired.append(True)
            act()

    events.register_first(event, hook)
    try:
        yield
    finally:
        events.unregister(event, hook)
    assert fired, f"no {operation} was sent"


def problem(reply: Reply, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem response with the given status; return its body."""
    assert reply.status == status, (reply.status, reply.body[:500])
    assert reply.header("content-type") == "application/problem+json", reply.headers
    body = reply.json
    assert body["status"] == status
    assert body["type"].startswith("urn:contact-notes:problem:")
    assert body["title"] and body["detail"]
    assert body["request_id"]
    assert "Traceback" not in reply.body.decode()
    return body
