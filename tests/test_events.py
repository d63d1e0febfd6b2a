"""Change events (#17): each change to a contact or note becomes one event with the right actor
and changes, appended once to the audit log, read through GET /audit (admins and owners) and
GET /contacts/{id}/history (any member).

The streams are delivered in-process to the very Lambda functions the template wires to them
(tests/search.py `index_now`, through `client.lambda_.invoke`).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.models import AuditEntry, Contact
from tests.conftest import Api, problem
from tests.search import index_now
from tests.streams import event, record, stored_contact
from tests.workspaces import acting_in, add, new_workspace


@pytest.fixture
def team(alice: Api, bob: Api) -> dict[str, Any]:
    """A shared workspace: alice owns it, bob edits in it."""
    workspace_id = new_workspace(alice, "Team")
    add(alice, workspace_id, bob.user["username"], "editor")
    return {"id": workspace_id, "alice": acting_in(alice, workspace_id), "bob": acting_in(bob, workspace_id)}


def audit(api: Api, query: str = "") -> list[dict[str, Any]]:
    """Every event the caller may read, newest first, following the cursors."""
    events: list[dict[str, Any]] = []
    cursor = ""
    while True:
        reply = api.get(f"/audit?limit=100{query}{cursor}")
        assert reply.status == 200, reply.body
        events += reply.json["items"]
        if reply.json["next_cursor"] is None:
            return events
        cursor = f"&cursor={reply.json['next_cursor']}"


def order(events: list[dict[str, Any]]) -> Any:
    """Sort key: where an event of that (type, actor, resource) stands among `events`."""
    place = {(e["type"], e["actor_id"], e["resource_id"]): i for i, e in enumerate(events)}
    return lambda entry: place.get(entry, -1)


def test_every_event_type_names_its_actor_and_changes(team: dict[str, Any], chalice_client: Client) -> None:
    alice, bob = team["alice"], team["bob"]
    alice_id, bob_id = alice.user["id"], bob.user["id"]
    contact = bob.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    cid = contact["id"]
    assert alice.patch(f"/contacts/{cid}", {"company": "Analytical Engines"}).status == 200
    kept = bob.post(f"/contacts/{cid}/notes", {"body": "Met  at the  fair  #expo"}).json
    edited = bob.post(f"/contacts/{cid}/notes", {"body": "first draft"}).json
    index_now(chalice_client)  # the normalizer processes both notes: no events of its own
    assert alice.put(f"/notes/{edited['id']}", {"body": "second draft"}).status == 200
    assert bob.delete(f"/notes/{edited['id']}").status == 204
    assert alice.delete(f"/contacts/{cid}").status == 204  # sweeps `kept` with it
    index_now(chalice_client)

    events = list(reversed(audit(alice)))  # oldest first
    summary = [(e["type"], e["actor_id"], e["resource_id"]) for e in events]
    assert summary == [
        ("contact.created", bob_id, cid),
        ("contact.updated", alice_id, cid),
        ("note.created", bob_id, kept["id"]),
        ("note.created", bob_id, edited["id"]),
        ("note.updated", alice_id, edited["id"]),
        ("note.deleted", bob_id, edited["id"]),
        # The contact and the note swept with it (the contact's deleter), at the same instant.
        *sorted([("contact.deleted", alice_id, cid), ("note.deleted", alice_id, kept["id"])], key=order(events)),
    ]
    by_type = {(e["type"], e["resource_id"]): e for e in events}
    created = by_type[("contact.created", cid)]
    assert created["data"] == contact and "changes" not in created
    assert created["workspace_id"] == team["id"] and created["contact_id"] == cid
    updated = by_type[("contact.updated", cid)]
    assert updated["changes"] == {"company": [None, "Analytical Engines"]}
    assert updated["data"]["company"] == "Analytical Engines" and updated["data"]["version"] == 2
    note_update = by_type[("note.updated", edited["id"])]
    assert note_update["changes"]["body"] == ["first draft", "second draft"]
    assert note_update["contact_id"] == cid
    for deleted in (by_type[("contact.deleted", cid)], by_type[("note.deleted", kept["id"])]):
        assert "data" not in deleted and "changes" not in deleted
    assert len({e["id"] for e in events}) == len(events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)  # ids sort by time
    assert all(e["occurred_at"] <= later["occurred_at"] for e, later in pairwise(events))


def test_the_normalizers_write_back_is_no_event(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "  messy\t\ttext #Tag "}).json
    index_now(chalice_client)
    assert alice.get(f"/notes/{note['id']}").json["processing_status"] == "processed"  # it did write
    assert [e["type"] for e in audit(alice)] == ["note.created", "contact.created"]


def test_replayed_records_append_no_second_entry(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    index_now(chalice_client)
    first = audit(alice)
    inserted = record("INSERT", new=stored_contact(alice.user["id"], contact["id"]))
    for _ in range(2):  # the mapping redelivers: same record, same event id, nothing new
        payload = chalice_client.lambda_.invoke("index_contacts", event(copy.deepcopy(inserted))).payload
        assert payload == {"batchItemFailures": []}
    assert audit(alice) == first and len(first) == 1
    entries = list(AuditEntry.query(alice.user["id"]))
    assert [entry.event_id for entry in entries] == [first[0]["id"]]
    # Kept AUDIT_RETENTION_DAYS (365) after the change, then DynamoDB's TTL removes it.
    occurred = datetime.fromisoformat(first[0]["occurred_at"].replace("Z", "+00:00"))
    assert entries[0].expires_at == (occurred + timedelta(days=365)).replace(microsecond=0)  # epoch seconds


def test_a_removal_no_user_made_is_no_event(alice: Api, chalice_client: Client) -> None:
    """A deleted workspace's sweep removes items without a deleter's mark: no event."""
    contact = alice.post("/contacts", {"first_name": "Ada"}).json
    index_now(chalice_client)
    gone = stored_contact(alice.user["id"], contact["id"])
    Contact(alice.user["id"], contact["id"]).delete()  # as the sweep does: no mark written
    payload = chalice_client.lambda_.invoke("index_contacts", event(record("REMOVE", old=gone))).payload
    assert payload == {"batchItemFailures": []}
    assert [e["type"] for e in audit(alice)] == ["contact.created"]


def test_batch_and_import_changes_name_their_caller(alice: Api, chalice_client: Client) -> None:
    ops = [{"op": "create", "contact": {"first_name": "One", "email": "one@example.org"}}]
    created = alice.post("/contacts/batch", {"operations": ops}).json["results"][0]["id"]
    reply = alice.post("/contacts/batch", {"operations": [{"op": "delete", "id": created}]})
    assert reply.status == 200, reply.body
    csv = b"First Name,E-mail Address,Notes\nTwo,two@example.org,hello\n"
    assert alice.request("POST", "/imports", raw=csv, headers={"content-type": "text/csv"}).status == 200
    index_now(chalice_client)
    events = list(reversed(audit(alice)))
    assert [e["type"] for e in events[:2]] == ["contact.created", "contact.deleted"]
    assert sorted(e["type"] for e in events[2:]) == ["contact.created", "note.created"]  # one import row: same instant
    assert {e["actor_id"] for e in events} == {alice.user["id"]}


def test_two_changes_in_one_batch_are_two_events(alice: Api, chalice_client: Client) -> None:
    """A batch's operations share one timestamp: each write is still its own event."""
    contact = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    ops = [
        {"op": "update", "id": contact["id"], "contact": {"title": "CTO"}},
        {"op": "update", "id": contact["id"], "contact": {"last_name": "Lovelace"}},
        {"op": "upsert", "contact": {"first_name": "Ada", "email": "ADA@example.org", "company": "Engines"}},
    ]
    reply = alice.post("/contacts/batch", {"operations": ops})
    assert reply.status == 200, reply.body
    index_now(chalice_client)
    # The same instant: in the order of their versions.
    updates = sorted((e for e in audit(alice) if e["type"] == "contact.updated"), key=lambda e: e["data"]["version"])
    assert [e["changes"] for e in updates] == [
        {"title": [None, "CTO"]},
        {"last_name": [None, "Lovelace"]},
        {
            "last_name": ["Lovelace", None],
            "email": ["ada@example.org", "ADA@example.org"],
            "company": [None, "Engines"],
            "title": ["CTO", None],
        },
    ]
    assert [e["data"]["version"] for e in updates] == [2, 3, 4]
    assert len({e["id"] for e in updates}) == 3


def test_audit_log_is_for_admins_and_owners_history_for_every_member(
    alice: Api, anon: Api, chalice_client: Client
) -> None:
    workspace_id = new_workspace(alice, "Team")
    owner = acting_in(alice, workspace_id)
    contact = owner.post("/contacts", {"first_name": "Shared"}).json
    index_now(chalice_client)
    for role, may_audit in (("admin", True), ("editor", False), ("viewer", False)):
        user = anon.sign_up(f"user_{role}")
        add(alice, workspace_id, user.user["username"], role)
        member = acting_in(user, workspace_id)
        reply = member.get("/audit")
        if may_audit:
            assert [e["type"] for e in reply.json["items"]] == ["contact.created"]
        else:
            problem(reply, 403)
        history = member.get(f"/contacts/{contact['id']}/history")
        assert history.status == 200 and [e["resource_id"] for e in history.json["items"]] == [contact["id"]]
    assert [e["type"] for e in audit(owner)] == ["contact.created"]
    # Another workspace's log is not the caller's: alice's personal log has none of it.
    assert audit(alice) == []


def test_history_holds_a_contact_and_its_notes_even_after_it_is_deleted(alice: Api, chalice_client: Client) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada"}).json
    other = alice.post("/contacts", {"first_name": "Other"}).json
    note = alice.post(f"/contacts/{ada['id']}/notes", {"body": "hello"}).json
    alice.post(f"/contacts/{other['id']}/notes", {"body": "elsewhere"})
    alice.delete(f"/contacts/{ada['id']}")
    index_now(chalice_client)
    reply = alice.get(f"/contacts/{ada['id']}/history")
    assert reply.status == 200
    items = reply.json["items"]
    assert [(e["type"], e["resource_id"]) for e in items] == [
        ("note.deleted", note["id"]),
        ("contact.deleted", ada["id"]),
        ("note.created", note["id"]),
        ("contact.created", ada["id"]),
    ] or [(e["type"], e["resource_id"]) for e in items] == [
        ("contact.deleted", ada["id"]),
        ("note.deleted", note["id"]),
        ("note.created", note["id"]),
        ("contact.created", ada["id"]),
    ]
    assert reply.json["filtered_within_page"] == []
    problem(alice.get("/contacts/not-an-id/history"), 404)
    assert alice.get("/contacts/01JZZZZZZZZZZZZZZZZZZZZZZZ/history").json["items"] == []


def test_filters_keyed_and_within_the_page(team: dict[str, Any], chalice_client: Client) -> None:
    alice, bob = team["alice"], team["bob"]
    a = alice.post("/contacts", {"first_name": "A"}).json
    b = bob.post("/contacts", {"first_name": "B"}).json
    bob.patch(f"/contacts/{a['id']}", {"last_name": "Lovelace"})
    index_now(chalice_client)

    by_resource = alice.get(f"/audit?resource_id={a['id']}").json
    assert [e["type"] for e in by_resource["items"]] == ["contact.updated", "contact.created"]
    assert by_resource["filtered_within_page"] == []
    by_actor = alice.get(f"/audit?actor_id={bob.user['id']}").json
    assert [(e["type"], e["resource_id"]) for e in by_actor["items"]] == [
        ("contact.updated", a["id"]),
        ("contact.created", b["id"]),
    ]
    both = alice.get(f"/audit?resource_id={a['id']}&actor_id={bob.user['id']}&type=contact.updated").json
    assert [e["type"] for e in both["items"]] == ["contact.updated"]
    assert both["filtered_within_page"] == ["actor_id", "type"]
    created = alice.get("/audit?type=contact.created").json
    assert {e["resource_id"] for e in created["items"]} == {a["id"], b["id"]}
    assert created["filtered_within_page"] == ["type"]

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert alice.get(f"/audit?since={future}").json["items"] == []
    assert len(alice.get(f"/audit?since={past}").json["items"]) == 3
    assert alice.get(f"/audit?until={past}").json["items"] == []
    assert alice.get(f"/audit?since={future}&until={past}").json["items"] == []  # an empty window
    offset = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert len(alice.get("/audit?since=" + offset.replace("+", "%2B")).json["items"]) == 3


def test_pages_follow_cursors_bound_to_the_query(alice: Api, chalice_client: Client) -> None:
    for n in range(5):
        alice.post("/contacts", {"first_name": f"C{n}"})
    index_now(chalice_client)
    first = alice.get("/audit?limit=2").json
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [e["id"] for e in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = alice.get(f"/audit?limit=2&cursor={cursor}").json
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5 and seen == sorted(seen, reverse=True)
    # A cursor is bound to its query and workspace.
    problem(alice.get(f"/audit?limit=2&type=contact.created&cursor={first['next_cursor']}"), 400)
    problem(alice.get("/audit?cursor=not-a-cursor"), 400)
    problem(alice.get("/audit?cursor="), 400)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "type=contact.renamed",
        "resource_id=not-an-id",
        "actor_id=" + "x" * 65,
        "since=yesterday",
        "since=2026-01-01T00:00:00",  # no time zone: ambiguous
        "until=0.5",  # not a Unix time either
        "since=2026-02-30T00:00:00Z",
    ],
)
def test_bad_audit_queries_are_422(alice: Api, query: str) -> None:
    problem(alice.get(f"/audit?{query}"), 422)


def test_an_oversized_note_event_omits_its_bodies(alice: Api, chalice_client: Client) -> None:
    contact = alice.post("/contacts", {"first_name": "Big"}).json
    body = "é" * 90_000  # 180 KB of UTF-8: an update's event would carry it four times
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": body}).json
    index_now(chalice_client)
    alice.put(f"/notes/{note['id']}", {"body": body + "!"})
    index_now(chalice_client)
    events = {e["type"]: e for e in audit(alice)}
    assert events["note.created"]["data"]["body"] == body
    update = events["note.updated"]
    assert update["omitted"] and "changes.body" in update["omitted"]
    assert len(str(update).encode()) < 400_000
