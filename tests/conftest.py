"""Fixtures: every test runs over moto (no AWS, no network) through Chalice's test client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from bench.calls import CallCounter, counting
from chalicelib import runtime
from chalicelib.models import create_tables

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-only-secret-0123456789abcdef0123456789"
API = "/api/v1"


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
    # Most tests make many requests quickly as one user; the rate-limit tests set their own.
    monkeypatch.setenv("RATE_LIMIT_BURST", "100000")
    monkeypatch.setenv("RATE_LIMIT_PER_SECOND", "100000")
    runtime.reset()
    yield
    runtime.reset()


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
    with mock_aws():
        create_tables(runtime.settings())
        with counting() as counter:
            yield counter
        assert counter.scans == 0, "a Scan ran: no request path may scan"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


@dataclass
class Api:
    """Thin HTTP helper over chalice.test.Client; `token` is sent when set."""

    client: Client
    token: str | None = None
    user: dict[str, Any] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Reply:
        sent = {"accept": "application/json"}
        if body is not None:
            sent["content-type"] = "application/json"
            raw = json.dumps(body).encode()
        if auth and self.token:
            sent["authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        response = self.client.http.request(method, API + path, headers=sent, body=raw or b"")
        return Reply(response.status_code, dict(response.headers), response.body)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.request("DELETE", path, **kw)

    def register(self, username: str, password: str = "correct horse battery", email: str | None = None) -> Reply:
        payload = {"username": username, "email": email or f"{username}@example.com", "password": password}
        return self.post("/auth/register", payload, auth=False)

    def token_form(self, form: bytes) -> Reply:
        """POST a raw form body to the token endpoint."""
        headers = {"content-type": "application/x-www-form-urlencoded"}
        return self.request("POST", "/auth/token", raw=form, headers=headers, auth=False)

    def login(self, username: str, password: str = "correct horse battery") -> Reply:
        return self.token_form(f"username={username}&password={password}".encode())

    def sign_up(self, username: str) -> Api:
        """Register and log in a user; return an Api that acts as them."""
        registered = self.register(username)
        assert registered.status == 201, registered.body
        token = self.login(username).json["access_token"]
        return Api(self.client, token=token, user=registered.json)


@pytest.fixture
def chalice_client(dynamodb: CallCounter) -> Iterator[Client]:
    from app import app

    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
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
