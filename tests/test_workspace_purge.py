"""Deleting a workspace removes its data: the request removes the workspace and its
memberships, the stream consumer (purge_workspaces, driven through client.lambda_.invoke with
records built from the table's items) sweeps its contacts and notes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.models import Contact, Membership, Note, WebhookEndpoint, Workspace
from tests.conftest import Api, CallCounter, answering, problem, unprocessed
from tests.workspaces import acting_in, add, new_workspace, removal


def invoke(client: Client, *records: dict[str, Any]) -> list[str]:
    """Run the consumer; return the sequence numbers it reported as failed."""
    result = client.lambda_.invoke("purge_workspaces", {"Records": list(records)}).payload
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


@pytest.fixture
def team(alice: Api, bob: Api) -> dict[str, Any]:
    """A shared workspace with bob as an editor, 30 contacts (more than one batch of 25) and
    a note on each of 3 of them, plus alice's personal contact that must survive."""
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "editor")
    inside = acting_in(alice, workspace_id)
    contacts = [inside.post("/contacts", {"first_name": f"C{i}"}).json for i in range(30)]
    for contact in contacts[:3]:
        assert inside.post(f"/contacts/{contact['id']}/notes", {"body": "n"}).status == 201
    hook = inside.post("/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    assert hook.status == 201, hook.body
    personal = alice.post("/contacts", {"first_name": "Mine"}).json
    item = Workspace.get(workspace_id, consistent_read=True)
    return {"id": workspace_id, "item": item, "personal_contact": personal["id"], "bob": acting_in(bob, workspace_id)}


def test_delete_removes_workspace_and_memberships_then_the_sweep_removes_the_data(
    alice: Api, team: dict[str, Any], chalice_client: Client, dynamodb: CallCounter
) -> None:
    workspace_id = team["id"]
    dynamodb.reset()
    assert alice.delete(f"/workspaces/{workspace_id}").status == 204
    # A read of the caller's membership, one Query of the members, one transaction.
    assert dynamodb.by_operation() == {"GetItem": 1, "Query": 1, "TransactWriteItems": 1}
    assert Membership.count(workspace_id) == 0
    assert Contact.count(workspace_id) == 30  # not yet: the stream consumer sweeps them
    dynamodb.reset()
    assert invoke(chalice_client, removal(team["item"])) == []
    # Per partition (contacts, notes, email claims, memberships, webhook endpoints) one keys-only
    # Query page; BatchWriteItem per 25 (30 contacts: 2, 3 notes: 1, 1 endpoint and its counter: 1;
    # none of these contacts has an email).
    assert dynamodb.by_operation() == {"Query": 5, "BatchWriteItem": 4}
    assert list(WebhookEndpoint.query(workspace_id)) == []  # its signing secret is gone with it
    assert Contact.count(workspace_id) == 0
    assert Note.count(workspace_id) == 0
    assert alice.get(f"/contacts/{team['personal_contact']}").status == 200  # personal data untouched


def test_the_sweep_is_idempotent(alice: Api, team: dict[str, Any], chalice_client: Client) -> None:
    record = removal(team["item"])
    assert alice.delete(f"/workspaces/{team['id']}").status == 204
    assert invoke(chalice_client, record) == []
    assert invoke(chalice_client, copy.deepcopy(record)) == []  # a replay: nothing left, nothing wrong
    assert Contact.count(team["id"]) == 0


def test_a_personal_workspace_record_never_sweeps(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Safe"}).json
    personal = Workspace.get(alice.user["id"], consistent_read=True)
    assert invoke(chalice_client, removal(personal)) == []
    assert alice.get(f"/contacts/{contact['id']}").status == 200


def test_inserts_and_modifies_are_ignored(
    alice: Api, team: dict[str, Any], chalice_client: Client, dynamodb: CallCounter
) -> None:
    insert, modify = removal(team["item"]), removal(team["item"])
    insert["eventName"], modify["eventName"] = "INSERT", "MODIFY"
    for record in (insert, modify):
        record["dynamodb"]["NewImage"] = record["dynamodb"].pop("OldImage")
    dynamodb.reset()
    assert invoke(chalice_client, insert, modify) == []
    assert dynamodb.calls == []
    assert Contact.count(team["id"]) == 30


def test_a_poison_record_is_the_only_failure(alice: Api, team: dict[str, Any], chalice_client: Client) -> None:
    assert alice.delete(f"/workspaces/{team['id']}").status == 204
    good = removal(team["item"])
    poison = removal(team["item"])
    del poison["dynamodb"]["Keys"]["workspace_id"]
    del poison["dynamodb"]["OldImage"]["workspace_id"]
    assert invoke(chalice_client, poison, good) == [poison["dynamodb"]["SequenceNumber"]]
    assert Contact.count(team["id"]) == 0


def test_items_left_unprocessed_are_reported_and_a_retry_finishes(
    alice: Api, team: dict[str, Any], chalice_client: Client
) -> None:
    assert alice.delete(f"/workspaces/{team['id']}").status == 204
    record = removal(team["item"])

    with answering("BatchWriteItem", unprocessed):
        failed = invoke(chalice_client, record)
    assert failed == [record["dynamodb"]["SequenceNumber"]]
    assert Contact.count(team["id"]) == 30  # nothing lost, nothing half-claimed
    assert invoke(chalice_client, record) == []  # the mapping's retry
    assert Contact.count(team["id"]) == 0


def test_items_a_throttled_store_leaves_unprocessed_are_sent_again_with_backoff(
    alice: Api, team: dict[str, Any], chalice_client: Client
) -> None:
    """DynamoDB leaving a batch unprocessed twice (throttling) costs resends, not the record."""
    assert alice.delete(f"/workspaces/{team['id']}").status == 204
    throttled = [2]

    def throttling(request: dict[str, Any]) -> tuple[object, dict[str, Any]] | None:
        if not throttled[0]:
            return None  # DynamoDB caught up: the call goes through
        throttled[0] -= 1
        return unprocessed(request)

    with answering("BatchWriteItem", throttling):
        assert invoke(chalice_client, removal(team["item"])) == []
    assert throttled == [0]
    assert Contact.count(team["id"]) == 0 and Note.count(team["id"]) == 0


def test_a_member_with_a_valid_token_cannot_write_into_a_deleted_workspace(
    alice: Api, team: dict[str, Any], chalice_client: Client
) -> None:
    """bob's access token outlives the workspace; his creations are refused, so the sweep
    leaves nothing behind."""
    bob = team["bob"]
    contact_id = bob.get("/contacts?limit=1").json["items"][0]["id"]
    assert alice.delete(f"/workspaces/{team['id']}").status == 204
    body = problem(bob.post("/contacts", {"first_name": "Orphan?"}), 403)
    assert body["detail"] == "This workspace no longer exists."
    problem(bob.post(f"/contacts/{contact_id}/notes", {"body": "orphan?"}), 403)
    problem(bob.post("/notes", {"contact_id": contact_id, "body": "orphan?"}), 403)
    assert invoke(chalice_client, removal(team["item"])) == []
    assert Contact.count(team["id"]) == 0 and Note.count(team["id"]) == 0


def test_a_workspace_with_more_members_than_one_transaction_holds(alice: Api) -> None:
    """Up to 98 members besides the owner go in the transaction; the rest in batches of 25."""
    workspace_id = new_workspace(alice)
    now = "2026-01-01T00:00:00.000Z"
    with Membership.batch_write() as batch:
        for i in range(120):
            user_id = f"01M8FP1CYTGFW5FGC7TXS{i:05d}"
            member = Membership(workspace_id, user_id, role="viewer", username=f"u{i}", created_at=now, updated_at=now)
            batch.save(member)
    assert alice.delete(f"/workspaces/{workspace_id}").status == 204
    assert Membership.count(workspace_id) == 0
    problem(alice.get(f"/workspaces/{workspace_id}"), 404)
