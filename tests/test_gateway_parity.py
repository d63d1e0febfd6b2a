"""Gateway-level answers: the local server and the deployed stack, against one table.

Some requests never reach the API Lambda on AWS: API Gateway answers them itself, shaped by
the gateway responses in infra/template.json. `make run` (and the tests' client) must give
the very same answers. Each row of CASES is checked three ways:
- the deployed side: the API definition `chalice package` deploys (Chalice's CloudFormation
  Swagger) decides as API Gateway does whether the request matches a method, needs the
  authorizer, or is too large; the authorizer and the API run as their Lambdas would;
  gateway responses are rendered from the template;
- the local server started by `make run`'s entry point, over HTTP;
- Chalice's test client, which the rest of the suite uses.
The deployed side decides independently (from the deployed API definition) which gateway
response applies, but renders it with the same devtools.gateway code as the local sides: it
shows that the template and the routing agree, not how real API Gateway substitutes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from chalice.deploy.swagger import CFNSwaggerGenerator
from chalice.test import Client

from bench.inprocess import authorizer_event, proxy_event
from devtools.gateway import MAX_PAYLOAD_BYTES, gateway_responses, render, render_entry
from tests.api import API
from tests.stack import Stack

UNAUTHORIZED = {
    "type": "urn:contact-notes:problem:unauthorized",
    "title": "Unauthorized",
    "status": 401,
    "detail": "A valid bearer token is required.",
}
NOT_FOUND = {"type": "urn:contact-notes:problem:not-found", "title": "Not found", "status": 404,
             "detail": "No such resource."}  # fmt: skip
SAFE = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
ALLOW = {"Allow": "GET, POST, OPTIONS"}


def NOT_ALLOWED(method: str) -> dict[str, Any]:
    return {"type": "urn:contact-notes:problem:method-not-allowed", "title": "Method not allowed", "status": 405,
            "detail": f"{method} is not allowed here; use GET, POST, OPTIONS."}  # fmt: skip


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # sent
    expected_headers: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    deployed: bool = True  # False: a case API Gateway answers outside our template (see CASES)


CASES = {
    "no token": Case("GET", "/contacts", 401, UNAUTHORIZED, expected_headers={"WWW-Authenticate": "Bearer"}),
    "blank Authorization": Case("GET", "/contacts", 401, UNAUTHORIZED, {"Authorization": ""},
                                {"WWW-Authenticate": "Bearer"}),
    "bad token": Case("GET", "/contacts", 401, UNAUTHORIZED, {"Authorization": "Bearer nope"},
                      {"WWW-Authenticate": "Bearer"}),
    "bad token, public route": Case("GET", "/health", 200, {"status": "ok"}, {"Authorization": "Bearer nope"}),
    "unknown route": Case("GET", "/no-such-resource", 404, NOT_FOUND),
    "unknown route with a token": Case("GET", "/no-such-resource", 404, NOT_FOUND, {"Authorization": "Bearer nope"}),
    "unknown route under an item": Case("GET", "/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH/photos", 404, NOT_FOUND),
    "method the resource lacks": Case("DELETE", "/contacts", 405, NOT_ALLOWED("DELETE"), expected_headers=ALLOW),
    "method the resource lacks, with a token": Case("PUT", "/contacts", 405, NOT_ALLOWED("PUT"),
                                                    {"Authorization": "Bearer nope"}, ALLOW),
    "unknown method on an unknown route": Case("TRACE", "/no-such-resource", 404, NOT_FOUND),
    # Methods no REST API resource can have: on AWS they never reach an API, and what the front
    # door answers is not shaped by our template, so they have no deployed side to compare.
    "unknown method": Case("TRACE", "/contacts", 405, NOT_ALLOWED("TRACE"), expected_headers=ALLOW, deployed=False),
    "unknown method with a token": Case("PROPFIND", "/contacts", 405, NOT_ALLOWED("PROPFIND"),
                                        {"Authorization": "Bearer nope"}, ALLOW, deployed=False),
    "oversized body": Case(
        "POST", "/contacts", 413,
        {"type": "urn:contact-notes:problem:payload-too-large", "title": "Payload too large", "status": 413,
         "detail": "The request is larger than the API accepts (10 MB)."},
        {"Authorization": "Bearer nope", "Content-Type": "application/json"}, body_bytes=MAX_PAYLOAD_BYTES + 1,
    ),
}  # fmt: skip


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def check(case: Case, answer: Answer) -> None:
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert answer.status == case.status, (answer.status, answer.body[:300])
    wanted = {k.lower(): v for k, v in {**SAFE, **case.expected_headers}.items()}
    assert {k: headers.get(k) for k in wanted} == wanted
    body = json.loads(answer.body)
    if case.status >= 400:
        assert headers["content-type"] == "application/problem+json"
        assert body.pop("request_id")
        body.pop("instance", None)  # the app's own problems name the path; the gateway's cannot
    assert body == case.body


# ---- the deployed side ---------------------------------------------------------------------


def _resource(templates: list[str], path: str) -> str | None:
    """The resource API Gateway matches a path to: segment by segment, a {param} taking one."""
    parts = path.rstrip("/").split("/")
    for template in templates:
        pattern = template.split("/")
        if len(pattern) == len(parts) and all(
            p == s or (p[:1], p[-1:]) == ("{", "}") for p, s in zip(pattern, parts, strict=True)
        ):
            return template
    return None


def _authorize(client: Client, token: str) -> dict[str, Any] | None:
    """The authorizer Lambda's context, or None when it raised "Unauthorized" (API Gateway's 401)."""
    try:
        return dict(client.lambda_.invoke("jwt_auth", authorizer_event(token.removeprefix("Bearer "))).payload)
    except Exception as exc:
        if exc.args == ("Unauthorized",):
            return None
        raise


def deployed(client: Client, case: Case) -> Answer:
    from app import app

    def gateway(kind: str) -> Answer:
        rendered = render(kind, "deployed-request-id")
        return Answer(rendered["statusCode"], rendered["headers"], rendered["body"].encode())

    if case.body_bytes > MAX_PAYLOAD_BYTES:
        return gateway("REQUEST_TOO_LARGE")
    paths = CFNSwaggerGenerator().generate_swagger(app)["paths"]  # what `chalice package` deploys
    resource = _resource(list(paths), API + case.path)
    operation = paths[resource].get(case.method.lower()) if resource else None
    if resource is None or not isinstance(operation, dict):
        return gateway("MISSING_AUTHENTICATION_TOKEN")
    context: dict[str, Any] = {}
    if operation.get("security"):
        token = case.headers.get("Authorization", "").strip()
        authorized = _authorize(client, token) if token else None
        if authorized is None:
            return gateway("UNAUTHORIZED")
        context = authorized["context"]
    reply = app(proxy_event(case.method, resource, API + case.path, None, authorizer=context), None)
    return Answer(reply["statusCode"], reply["headers"], reply["body"].encode())


# ---- the local sides ---------------------------------------------------------------------------


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    return shared_stack


def over_http(stack: Stack, case: Case) -> Answer:
    body = b"x" * case.body_bytes
    reply = requests.request(case.method, stack.base + API + case.path, headers=case.headers, data=body, timeout=30)
    return Answer(reply.status_code, dict(reply.headers), reply.content)


def through_test_client(client: Client, case: Case) -> Answer:
    reply = client.http.request(case.method, API + case.path, headers=case.headers, body=b"x" * case.body_bytes)
    return Answer(reply.status_code, dict(reply.headers), reply.body)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.deployed])
def test_deployed_stack_answers_as_the_table_says(chalice_client: Client, name: str) -> None:
    check(CASES[name], deployed(chalice_client, CASES[name]))


@pytest.mark.parametrize("name", CASES)
def test_make_run_answers_as_the_table_says(stack: Stack, name: str) -> None:
    check(CASES[name], over_http(stack, CASES[name]))


@pytest.mark.parametrize("name", CASES)
def test_test_client_answers_as_the_table_says(chalice_client: Client, name: str) -> None:
    check(CASES[name], through_test_client(chalice_client, CASES[name]))


def test_every_gateway_response_is_a_problem_with_safe_headers() -> None:
    for kind, entry in gateway_responses().items():
        rendered = render_entry(entry, 400, "rid", "why")
        assert rendered["headers"]["Content-Type"] == "application/problem+json", kind
        assert {k: rendered["headers"].get(k) for k in SAFE} == SAFE, kind
        body = json.loads(rendered["body"])
        assert body["type"].startswith("urn:contact-notes:problem:"), kind
        assert body["title"] and body["detail"], kind
        assert body["request_id"] == "rid", kind
        if "statusCode" in entry:
            assert body["status"] == entry["statusCode"] == rendered["statusCode"], kind


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(stack: Stack) -> None:
    """A client may declare far more than it sends (or than memory holds): make run answers
    413 from the header, reading at most what it must, and closes the connection."""
    import socket

    host, port = stack.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        head = (f"POST {API}/contacts HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {50 * MAX_PAYLOAD_BYTES}\r\n\r\n")  # fmt: skip
        connection.sendall(head.encode() + b"x" * 1024)
        connection.shutdown(socket.SHUT_WR)  # no more is coming
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["type"] == "urn:contact-notes:problem:payload-too-large"
