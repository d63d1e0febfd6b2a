"""Idempotency-Key on creating POSTs (issue #16), through HTTP: a repeat answers as the first did
and writes nothing; another request under the key is a 422; failures are not stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib import runtime
from tests.api import PASSWORD
from tests.conftest import Api, CallCounter, answering, before_first, dynamodb_error, problem
from tests.stack import poll

KEY = "Idempotency-Key"


def keyed(key: str | None = None) -> dict[str, str]:
    return {KEY: key or str(uuid.uuid4())}


def contacts(api: Api) -> list[dict[str, Any]]:
    reply = api.get("/contacts")
    assert reply.status == 200, reply.body
    return list(reply.json["items"])


def test_a_repeated_post_answers_the_same_and_creates_one(alice: Api) -> None:
    headers = keyed()
    first = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    again = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)

    assert first.status == again.status == 201
    assert again.json == first.json
    assert again.header("ETag") == first.header("ETag")
    assert first.header("Idempotent-Replayed") is None
    assert again.header("Idempotent-Replayed") == "true"
    assert [c["id"] for c in contacts(alice)] == [first.json["id"]]


def test_every_creating_post_replays(alice: Api) -> None:
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    workspace_key, note_key, flat_key, batch_key = keyed(), keyed(), keyed(), keyed()
    sends = [
        ("/workspaces", {"name": "Team"}, workspace_key),
        (f"/contacts/{contact['id']}/notes", {"body": "hello"}, note_key),
        ("/notes", {"contact_id": contact["id"], "body": "flat"}, flat_key),
        ("/contacts/batch", {"operations": [{"op": "create", "contact": {"first_name": "B"}}]}, batch_key),
    ]
    for path, body, headers in sends:
        first = alice.post(path, body, headers=headers)
        again = alice.post(path, body, headers=headers)
        assert first.status in (200, 201), (path, first.body)
        assert (again.status, again.json) == (first.status, first.json), path
        assert again.header("Idempotent-Replayed") == "true", path
    notes = alice.get(f"/contacts/{contact['id']}/notes").json["items"]
    assert sorted(n["body"] for n in notes) == ["flat", "hello"]
    assert sorted(c["first_name"] for c in contacts(alice)) == ["Ada", "B"]
    assert [w["name"] for w in alice.get("/workspaces").json["items"] if not w.get("personal")] == ["Team"]


def test_an_import_replays(alice: Api) -> None:
    headers = {**keyed(), "content-type": "text/csv"}
    csv = b"first_name,last_name\nGrace,Hopper\n"
    first = alice.request("POST", "/imports", raw=csv, headers=headers)
    again = alice.request("POST", "/imports", raw=csv, headers=headers)
    assert first.status == 200, first.body
    assert (again.status, again.json) == (first.status, first.json)
    assert again.header("Idempotent-Replayed") == "true"
    assert [c["first_name"] for c in contacts(alice)] == ["Grace"]


def test_the_same_key_with_another_body_is_a_422_and_writes_nothing(alice: Api) -> None:
    headers = keyed()
    assert alice.post("/contacts", {"first_name": "Ada"}, headers=headers).status == 201
    body = problem(alice.post("/contacts", {"first_name": "Eve"}, headers=headers), 422)
    assert body["type"].endswith(":idempotency-key-reused")
    assert [c["first_name"] for c in contacts(alice)] == ["Ada"]
    # The 422 about the key stored nothing: the first answer still replays.
    assert alice.post("/contacts", {"first_name": "Ada"}, headers=headers).header("Idempotent-Replayed") == "true"


def test_the_same_key_on_another_path_is_another_request(alice: Api) -> None:
    headers = keyed()
    contact = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    note = alice.post(f"/contacts/{contact.json['id']}/notes", {"body": "x"}, headers=headers)
    assert note.status == 201 and note.header("Idempotent-Replayed") is None


def test_two_callers_keys_never_collide(alice: Api, bob: Api) -> None:
    headers = keyed("the-same-key")
    mine = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    theirs = bob.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert mine.status == theirs.status == 201
    assert theirs.header("Idempotent-Replayed") is None
    assert mine.json["id"] != theirs.json["id"]
    assert [c["id"] for c in contacts(alice)] == [mine.json["id"]]
    assert [c["id"] for c in contacts(bob)] == [theirs.json["id"]]


def test_one_user_in_two_workspaces_has_two_scopes(alice: Api) -> None:
    workspace = alice.post("/workspaces", {"name": "Team"}).json
    login = f"username=alice&password={PASSWORD}&workspace_id={workspace['id']}"
    inside = alice.token_form(login.encode())
    assert inside.status == 200, inside.body
    team = Api(alice.client, token=inside.json["access_token"], user=alice.user)
    headers = keyed()
    personal = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    shared = team.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert shared.status == 201 and shared.header("Idempotent-Replayed") is None
    assert personal.json["id"] != shared.json["id"]


@pytest.mark.parametrize(
    ("body", "status", "corrected"),
    [
        ({"first_name": ""}, 422, {"first_name": "Ada"}),  # invalid, then corrected
        ({"first_name": "Ada", "email": "taken@example.org"}, 409, {"first_name": "Ada", "email": "new@example.org"}),
    ],
)
def test_a_failed_request_is_not_stored(alice: Api, body: dict[str, Any], status: int, corrected: Any) -> None:
    assert alice.post("/contacts", {"first_name": "First", "email": "taken@example.org"}).status == 201
    headers = keyed()
    problem(alice.post("/contacts", body, headers=headers), status)
    problem(alice.post("/contacts", body, headers=headers), status)  # ran again: not a replay, not a 422
    fixed = alice.post("/contacts", corrected, headers=headers)
    assert fixed.status == 201 and fixed.header("Idempotent-Replayed") is None
    assert len(contacts(alice)) == 2


def test_a_missing_contacts_note_is_not_stored(alice: Api) -> None:
    headers = keyed()
    path = "/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH/notes"
    problem(alice.post(path, {"body": "x"}, headers=headers), 404)
    again = alice.post(path, {"body": "x"}, headers=headers)
    problem(again, 404)
    assert again.header("Idempotent-Replayed") is None


def test_a_viewer_refused_stores_nothing(alice: Api, bob: Api) -> None:
    workspace = alice.post("/workspaces", {"name": "Team"}).json
    added = alice.post(f"/workspaces/{workspace['id']}/members", {"username": "bob", "role": "viewer"})
    assert added.status == 201, added.body
    login = f"username=bob&password={PASSWORD}&workspace_id={workspace['id']}"
    viewer = Api(bob.client, token=bob.token_form(login.encode()).json["access_token"], user=bob.user)
    headers = keyed()
    problem(viewer.post("/contacts", {"first_name": "X"}, headers=headers), 403)
    problem(viewer.post("/contacts", {"first_name": "X"}, headers=headers), 403)


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_a_400(alice: Api, key: str) -> None:
    body = problem(alice.request("POST", "/contacts", raw=b'{"first_name":"A"}', headers={
        "content-type": "application/json", KEY: key}), 400)  # fmt: skip
    assert KEY in body["detail"]
    assert contacts(alice) == []


def test_the_longest_key_is_taken(alice: Api) -> None:
    assert alice.post("/contacts", {"first_name": "A"}, headers=keyed("~" * 255)).status == 201


def test_without_a_key_nothing_changes(alice: Api, dynamodb: CallCounter) -> None:
    first = alice.post("/contacts", {"first_name": "Ada"})
    again = alice.post("/contacts", {"first_name": "Ada"})
    assert first.status == again.status == 201 and again.header("Idempotent-Replayed") is None
    assert len(contacts(alice)) == 2
    idempotency = runtime.settings().idempotency_table
    assert not [table for _, table in dynamodb.log if table == idempotency]


def test_a_post_with_a_key_costs_two_calls_and_its_replay_one(alice: Api, dynamodb: CallCounter) -> None:
    idempotency = runtime.settings().idempotency_table
    headers = keyed()
    dynamodb.reset()
    alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert [op for op, table in dynamodb.log if table == idempotency] == ["PutItem", "UpdateItem"]
    dynamodb.reset()
    alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert [op for op, table in dynamodb.log if table == idempotency] == ["PutItem"]
    assert dynamodb.calls.count("PutItem") == 1  # the refused conditional put only: no contact written


def test_the_record_expires_by_ttl(alice: Api, limits: Any, dynamodb: CallCounter) -> None:
    from chalicelib.models import IdempotencyRecord

    limits(idempotency_seconds=1)
    headers = keyed()
    first = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert first.status == 201
    records = list(IdempotencyRecord.scan())  # the test reads the table: no request path scans
    assert len(records) == 1 and records[0].status == "COMPLETED"
    assert records[0].expiration is not None
    dynamodb.reset()  # the Scan above was the test's, not a request's

    def ran_again() -> Any:
        reply = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
        assert reply.status == 201
        return reply.header("Idempotent-Replayed") is None and reply

    second = poll(ran_again, 10)
    assert second.json["id"] != first.json["id"]
    assert len(contacts(alice)) == 2


def test_a_repeat_while_the_first_runs_is_a_409_with_retry_after(alice: Api) -> None:
    headers = keyed()
    seen: list[Any] = []

    def repeat() -> None:  # lands while the first request is between its key's record and its write
        seen.append(alice.post("/contacts", {"first_name": "Ada"}, headers=headers))

    with before_first("PutItem", repeat, table=runtime.settings().contacts_table):
        first = alice.post("/contacts", {"first_name": "Ada"}, headers=headers)
    assert first.status == 201
    body = problem(seen[0], 409)
    assert body["type"].endswith(":idempotency-key-in-use")
    assert seen[0].header("Retry-After") == "1"
    assert len(contacts(alice)) == 1
    # The 409 stored nothing: the first answer replays.
    assert alice.post("/contacts", {"first_name": "Ada"}, headers=headers).json == first.json


def test_an_unreachable_key_store_is_a_503_and_nothing_is_written(alice: Api) -> None:
    throttled = dynamodb_error("ThrottlingException")
    with answering("PutItem", lambda _: throttled, table=runtime.settings().idempotency_table):
        reply = alice.post("/contacts", {"first_name": "Ada"}, headers=keyed())
    problem(reply, 503)
    assert reply.header("Retry-After")
    assert contacts(alice) == []
