"""POST /contacts/batch: up to 100 operations, each answered with the status it alone would have had."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, CallCounter, before_first, problem
from tests.workspaces import acting_in, add, new_workspace

ULID_NOBODY_HAS = "01JD3Z8Q4X5W6V7T8S9R0P1N2M"


def batch(api: Api, *operations: Any) -> Any:
    return api.post("/contacts/batch", {"operations": list(operations)})


def create(first: str, email: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"op": "create", "contact": {"first_name": first, "email": email, **fields}}


def statuses(reply: Any) -> list[int]:
    return [r["status"] for r in reply.json["results"]]


def test_all_succeeding_is_a_200_with_a_result_per_operation_in_order(alice: Api) -> None:
    reply = batch(alice, create("Ann", "ann@example.com"), create("Bo"), create("Cy", phone="+1 415 555 0100"))
    assert reply.status == 200, reply.body
    results = reply.json["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 201), (1, 201), (2, 201)]
    for result, name in zip(results, ["Ann", "Bo", "Cy"], strict=True):
        assert alice.get(f"/contacts/{result['id']}").json["first_name"] == name
    assert alice.get(f"/contacts/{results[2]['id']}").json["phone_e164"] == "+14155550100"


def test_some_failing_is_a_207_and_never_undoes_the_others(alice: Api) -> None:
    held = alice.post("/contacts", {"first_name": "Held", "email": "held@example.com"}).json
    other = alice.post("/contacts", {"first_name": "Other", "email": "other@example.com"}).json
    reply = batch(
        alice,
        create("Dup", "HELD@example.com"),  # 409: another contact has it
        create(""),  # 422
        {"op": "update", "id": ULID_NOBODY_HAS, "contact": {"first_name": "X"}},  # 404
        {"op": "update", "id": other["id"], "contact": {"title": "CTO"}, "version": 9},  # 412
        {"op": "delete", "id": "not-an-id"},  # 404
        {"op": "explode"},  # 422
        create("Fine", "fine@example.com"),  # 201
        {"op": "update", "id": other["id"], "contact": {"email": "held@example.com"}},  # 409
        {"op": "update", "id": other["id"], "contact": {"title": "CEO"}},  # 200
    )
    assert reply.status == 207, reply.body
    assert statuses(reply) == [409, 422, 404, 412, 404, 422, 201, 409, 200]
    results = reply.json["results"]
    assert results[0]["problem"]["existing_id"] == held["id"]
    assert results[7]["problem"]["existing_id"] == held["id"]
    assert results[1]["problem"]["errors"][0]["pointer"] == "#/operations/1/contact/first_name"
    assert results[5]["problem"]["errors"][0]["pointer"] == "#/operations/5/op"
    assert results[1]["problem"]["type"].endswith("validation-error")
    assert alice.get(f"/contacts/{results[6]['id']}").json["email"] == "fine@example.com"
    assert alice.get(f"/contacts/{other['id']}").json["title"] == "CEO"
    assert "id" not in results[1] or results[1]["id"] is None


def test_upsert_finds_its_contact_by_email_ignoring_case(alice: Api) -> None:
    old = alice.post("/contacts", {"first_name": "Old", "email": "u@example.com", "company": "Gone"}).json
    reply = batch(
        alice,
        {"op": "upsert", "contact": {"first_name": "New", "email": "U@EXAMPLE.com", "title": "CTO"}},
        {"op": "upsert", "contact": {"first_name": "Fresh", "email": "fresh@example.com"}},
        {"op": "upsert", "contact": {"first_name": "Again", "email": "fresh@example.com"}},
        {"op": "upsert", "contact": {"first_name": "No email"}},
    )
    assert statuses(reply) == [200, 201, 200, 422]
    assert reply.json["results"][0]["id"] == old["id"]
    replaced = alice.get(f"/contacts/{old['id']}").json
    assert (replaced["first_name"], replaced["email"], replaced["company"], replaced["title"]) == (
        "New", "U@example.com", None, "CTO"
    )  # fmt: skip
    fresh = alice.get(f"/contacts/{reply.json['results'][1]['id']}").json
    assert fresh["first_name"] == "Again" and reply.json["results"][2]["id"] == fresh["id"]


def test_two_creates_with_one_email_in_a_batch_the_second_is_a_409(alice: Api) -> None:
    reply = batch(alice, create("A", "same@example.com"), create("B", "Same@Example.com"))
    assert statuses(reply) == [201, 409]
    assert reply.json["results"][1]["problem"]["existing_id"] == reply.json["results"][0]["id"]


def test_updates_move_email_claims_and_deletes_free_them(alice: Api) -> None:
    a = alice.post("/contacts", {"first_name": "A", "email": "a@example.com"}).json
    b = alice.post("/contacts", {"first_name": "B", "email": "b@example.com"}).json
    note = alice.post(f"/contacts/{b['id']}/notes", {"body": "a note of B"}).json
    reply = batch(
        alice,
        {"op": "delete", "id": b["id"], "version": 1},
        {"op": "update", "id": a["id"], "contact": {"email": "b@example.com"}},
        create("Takes a's old email", "a@example.com"),
        {"op": "delete", "id": b["id"]},
    )
    assert statuses(reply) == [204, 200, 201, 404]
    assert alice.get(f"/contacts/{b['id']}").status == 404
    assert alice.get(f"/contacts/{a['id']}").json["email"] == "b@example.com"
    assert alice.get(f"/notes/{note['id']}").status == 404  # swept with it
    # Claims follow: a new contact may take neither email now.
    again = batch(alice, create("X", "a@example.com"), create("Y", "b@example.com"))
    assert statuses(again) == [409, 409]


def test_a_batch_of_100_creates_takes_at_most_8_calls(alice: Api, dynamodb: CallCounter) -> None:
    dynamodb.reset()
    reply = batch(alice, *[create(f"P{i}", f"p{i}@example.com") for i in range(100)])
    assert statuses(reply) == [201] * 100
    assert len(dynamodb.calls) <= 8, dynamodb.by_operation()
    assert dynamodb.by_operation() == {"BatchGetItem": 1, "TransactWriteItems": 2}


def test_more_than_100_operations_is_a_413(alice: Api, dynamodb: CallCounter) -> None:
    dynamodb.reset()
    reply = batch(alice, *[create(f"P{i}") for i in range(101)])
    assert problem(reply, 413)["detail"].startswith("101 operations")
    assert dynamodb.calls == []


@pytest.mark.parametrize(
    "body",
    [{}, {"operations": []}, {"operations": {}}, {"operations": [], "extra": 1}, {"ops": [create("A")]}],
)
def test_a_body_without_operations_is_a_422(alice: Api, body: dict[str, Any]) -> None:
    assert problem(alice.post("/contacts/batch", body), 422)["errors"]


def test_an_email_taken_between_the_read_and_the_write_fails_that_operation_only(alice: Api) -> None:
    def take() -> None:
        assert alice.post("/contacts", {"first_name": "Quick", "email": "race@example.com"}).status == 201

    with before_first("TransactWriteItems", take):
        reply = batch(alice, create("A", "a@example.com"), create("Slow", "race@example.com"), create("C"))
    assert statuses(reply) == [201, 409, 201]
    quick = reply.json["results"][1]["problem"]["existing_id"]
    assert alice.get(f"/contacts/{quick}").json["first_name"] == "Quick"


def test_viewers_cannot_and_batches_stay_in_their_workspace(alice: Api, bob: Api) -> None:
    workspace = new_workspace(alice, "Team")
    add(alice, workspace, "bob", "viewer")
    assert problem(batch(acting_in(bob, workspace), create("X")), 403)
    mine = alice.post("/contacts", {"first_name": "Mine"}).json
    team = acting_in(alice, workspace)
    reply = batch(team, {"op": "delete", "id": mine["id"]}, create("Team one", "t@example.com"))
    assert statuses(reply) == [404, 201]
    assert alice.get(f"/contacts/{mine['id']}").status == 200
    assert team.get(f"/contacts/{reply.json['results'][1]['id']}").status == 200


def test_an_operation_whose_contact_changed_meanwhile_gets_the_status_it_would_alone(alice: Api) -> None:
    """Another request writes both contacts between the batch's read and its transaction: the
    update and the delete without a version are sent again alone (200, 204); the one with a
    version is then stale (412)."""
    a = alice.post("/contacts", {"first_name": "A"}).json
    b = alice.post("/contacts", {"first_name": "B"}).json
    c = alice.post("/contacts", {"first_name": "C"}).json

    def write_them() -> None:
        for contact in (a, b, c):
            assert alice.patch(f"/contacts/{contact['id']}", {"title": "Changed"}).status == 200

    with before_first("TransactWriteItems", write_them):
        reply = batch(
            alice,
            {"op": "update", "id": a["id"], "contact": {"company": "Acme"}},
            {"op": "delete", "id": b["id"]},
            {"op": "update", "id": c["id"], "contact": {"company": "Acme"}, "version": 1},
        )
    assert statuses(reply) == [200, 204, 412]
    updated = alice.get(f"/contacts/{a['id']}").json
    assert (updated["company"], updated["title"], updated["version"]) == ("Acme", "Changed", 3)
    assert alice.get(f"/contacts/{b['id']}").status == 404


def test_a_delete_whose_notes_sweep_is_cut_short_is_a_503_for_that_operation(alice: Api) -> None:
    from tests.conftest import answering, unprocessed

    b = alice.post("/contacts", {"first_name": "B"}).json
    note = alice.post(f"/contacts/{b['id']}/notes", {"body": "kept for now"}).json
    with answering("BatchWriteItem", unprocessed):
        reply = batch(alice, {"op": "delete", "id": b["id"]}, create("New", "n@example.com"))
    assert statuses(reply) == [503, 201]
    assert f"DELETE /contacts/{b['id']}" in reply.json["results"][0]["problem"]["detail"]
    assert alice.get(f"/notes/{note['id']}").status == 200
    assert alice.delete(f"/contacts/{b['id']}").status == 404  # finishes the sweep, as it says
    assert alice.get(f"/notes/{note['id']}").status == 404
