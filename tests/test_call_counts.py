"""DynamoDB calls per request, counted through botocore's event hooks (deterministic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from tests.conftest import Api, CallCounter, Reply


@pytest.fixture
def world(alice: Api) -> dict[str, str]:
    contact = alice.post("/contacts", {"first_name": "John"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "hi"}).json
    spare = alice.post("/contacts", {"first_name": "Spare"}).json
    spare_note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "spare"}).json
    return {"c": contact["id"], "n": note["id"], "spare": spare["id"], "spare_note": spare_note["id"]}


Request = Callable[[Api, dict[str, str]], Reply]

CASES: list[tuple[str, Request, int, dict[str, int]]] = [
    ("GET /health", lambda a, w: a.get("/health"), 200, {}),
    ("GET /auth/me", lambda a, w: a.get("/auth/me"), 200, {"GetItem": 1}),
    ("POST /auth/register", lambda a, w: a.register("newbie"), 201, {"TransactWriteItems": 1}),
    ("POST /auth/token", lambda a, w: a.login("alice"), 200, {"GetItem": 2}),
    ("POST /contacts", lambda a, w: a.post("/contacts", {"first_name": "X"}), 201, {"PutItem": 1}),
    ("GET /contacts", lambda a, w: a.get("/contacts"), 200, {"Query": 1}),
    ("GET /contacts/{id}", lambda a, w: a.get(f"/contacts/{w['c']}"), 200, {"GetItem": 1}),
    (
        "PUT /contacts/{id}",
        lambda a, w: a.put(f"/contacts/{w['c']}", {"first_name": "Y"}),
        200,
        {"UpdateItem": 1},
    ),
    (
        "PATCH /contacts/{id}",
        lambda a, w: a.patch(f"/contacts/{w['c']}", {"title": "T"}),
        200,
        {"UpdateItem": 1},
    ),
    (
        "DELETE /contacts/{id} (no notes)",
        lambda a, w: a.delete(f"/contacts/{w['spare']}"),
        204,
        {"DeleteItem": 1, "Query": 1},
    ),
    (
        "DELETE /contacts/{id} (2 notes)",
        lambda a, w: a.delete(f"/contacts/{w['c']}"),
        204,
        {"DeleteItem": 1, "Query": 1, "BatchWriteItem": 1},
    ),
    (
        "POST /contacts/{id}/notes",
        lambda a, w: a.post(f"/contacts/{w['c']}/notes", {"body": "b"}),
        201,
        {"TransactWriteItems": 1},
    ),
    (
        "POST /notes",
        lambda a, w: a.post("/notes", {"contact_id": w["c"], "body": "b"}),
        201,
        {"TransactWriteItems": 1},
    ),
    (
        "GET /contacts/{id}/notes",
        lambda a, w: a.get(f"/contacts/{w['c']}/notes"),
        200,
        {"GetItem": 1, "Query": 1},
    ),
    ("GET /notes/{id}", lambda a, w: a.get(f"/notes/{w['n']}"), 200, {"GetItem": 1}),
    ("PUT /notes/{id}", lambda a, w: a.put(f"/notes/{w['n']}", {"body": "c"}), 200, {"UpdateItem": 1}),
    ("PATCH /notes/{id}", lambda a, w: a.patch(f"/notes/{w['n']}", {"body": "d"}), 200, {"UpdateItem": 1}),
    ("DELETE /notes/{id}", lambda a, w: a.delete(f"/notes/{w['n']}"), 204, {"DeleteItem": 1}),
    ("GET /contacts/{bad id}", lambda a, w: a.get("/contacts/not-an-id"), 404, {}),
    (
        "GET /contacts/{missing}",
        lambda a, w: a.get("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH"),
        404,
        {"GetItem": 1},
    ),
    ("POST /contacts (invalid)", lambda a, w: a.post("/contacts", {"first_name": ""}), 422, {}),
    ("GET /contacts (bad cursor)", lambda a, w: a.get("/contacts?cursor=xyz"), 400, {}),
]


LOCKOUT_READS = {"POST /auth/token": ["GetItem"]}


@pytest.mark.parametrize(("name", "send", "status", "expected"), CASES, ids=[c[0] for c in CASES])
def test_calls_per_request(
    alice: Api,
    world: dict[str, str],
    dynamodb: CallCounter,
    name: str,
    send: Request,
    status: int,
    expected: dict[str, int],
) -> None:
    dynamodb.reset()
    reply = send(alice, world)
    assert reply.status == status, reply.body
    assert dynamodb.by_operation() == expected
    # The rate limiter adds exactly one call; sign-in also reads the account's lockout item.
    assert dynamodb.limiter_calls == ["UpdateItem", *LOCKOUT_READS.get(name, [])]


def test_authorizer_makes_no_calls(alice: Api, chalice_client: Client, dynamodb: CallCounter) -> None:
    dynamodb.reset()
    event: dict[str, Any] = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {alice.token}",
        "methodArn": "arn:aws:execute-api:us-east-1:1:a/api/GET/x",
    }
    assert chalice_client.lambda_.invoke("jwt_auth", event).payload["principalId"]
    assert dynamodb.calls == []


def test_a_page_of_100_is_one_query(alice: Api, dynamodb: CallCounter) -> None:
    contact = alice.post("/contacts", {"first_name": "Many"}).json
    for i in range(120):
        alice.post(f"/contacts/{contact['id']}/notes", {"body": f"note {i}"})
    dynamodb.reset()
    page = alice.get(f"/contacts/{contact['id']}/notes?limit=100").json
    assert len(page["items"]) == 100
    assert dynamodb.by_operation() == {"GetItem": 1, "Query": 1}
