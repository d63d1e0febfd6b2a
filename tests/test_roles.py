"""The role matrix: each role (and a non-member) against each kind of request, in a shared
and in a personal workspace; isolation between workspaces."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import Api, problem
from tests.workspaces import acting_in, add, new_workspace, token_reply

ROLES = ["owner", "admin", "editor", "viewer"]
ALLOWED = {  # kind of request -> the roles that may make it
    "read": {"owner", "admin", "editor", "viewer"},
    "write": {"owner", "admin", "editor"},
    "members": {"owner", "admin"},
    "rename": {"owner", "admin"},
    "delete": {"owner"},
}


@dataclass
class World:
    workspace_id: str
    contact_id: str
    note_id: str
    owner: Api  # alice, acting in the workspace
    caller: Api  # the user under test, acting in the workspace (or personally, for a non-member)


@pytest.fixture
def extra(anon: Api) -> Api:
    """A user to add as a member."""
    return anon.sign_up("frank")


def _shared_world(alice: Api, anon: Api, role: str | None) -> World:
    workspace_id = new_workspace(alice, "Team")
    owner = acting_in(alice, workspace_id)
    contact = owner.post("/contacts", {"first_name": "Shared"}).json
    note = owner.post(f"/contacts/{contact['id']}/notes", {"body": "team note"}).json
    if role == "owner":
        caller = owner
    else:
        user = anon.sign_up(f"user_{role or 'none'}")
        if role is None:
            problem(token_reply(user, user.user["username"], workspace_id), 403)
            caller = user  # a non-member keeps only a token into their personal workspace
        else:
            add(alice, workspace_id, user.user["username"], role)
            caller = acting_in(user, workspace_id)
    return World(workspace_id, contact["id"], note["id"], owner, caller)


def _expect(reply_status: int, allowed: bool, role: str | None, ok: int) -> None:
    if role is None:
        assert reply_status == 404, reply_status  # nothing of the workspace can even be named
    else:
        assert reply_status == (ok if allowed else 403), (role, reply_status)


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "non-member"])
def test_reads(alice: Api, anon: Api, role: str | None) -> None:
    world = _shared_world(alice, anon, role)
    caller = world.caller
    for path in (f"/contacts/{world.contact_id}", f"/notes/{world.note_id}", f"/contacts/{world.contact_id}/notes"):
        _expect(caller.get(path).status, True, role, 200)
    for path in (f"/workspaces/{world.workspace_id}", f"/workspaces/{world.workspace_id}/members"):
        _expect(caller.get(path).status, True, role, 200)
    listed = [c["id"] for c in caller.get("/contacts").json["items"]]
    assert (world.contact_id in listed) == (role is not None)


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "non-member"])
def test_writes_to_contacts_and_notes(alice: Api, anon: Api, role: str | None) -> None:
    world = _shared_world(alice, anon, role)
    caller, allowed = world.caller, role in ALLOWED["write"]
    contact, note = f"/contacts/{world.contact_id}", f"/notes/{world.note_id}"
    _expect(caller.patch(contact, {"title": "CEO"}).status, allowed, role, 200)
    _expect(caller.put(contact, {"first_name": "Renamed"}).status, allowed, role, 200)
    _expect(caller.post(f"{contact}/notes", {"body": "more"}).status, allowed, role, 201)
    _expect(caller.post("/notes", {"contact_id": world.contact_id, "body": "flat"}).status, allowed, role, 201)
    _expect(caller.patch(note, {"body": "edited"}).status, allowed, role, 200)
    _expect(caller.put(note, {"body": "edited again"}).status, allowed, role, 200)
    _expect(caller.delete(note).status, allowed, role, 204)
    _expect(caller.delete(contact).status, allowed, role, 204)
    created = caller.post("/contacts", {"first_name": "New"})
    if role is None:
        assert created.status == 201  # into their own personal workspace, not the team's
        assert created.json["id"] not in [c["id"] for c in world.owner.get("/contacts").json["items"]]
    else:
        _expect(created.status, allowed, role, 201)
    if role is not None and not allowed:
        body = problem(caller.post("/contacts", {"first_name": "X"}), 403)
        assert body["detail"] == f"Your role in this workspace ({role}) cannot do this; it needs editor."
        # Nothing changed: the owner still sees the contact and note as they were.
        assert world.owner.get(contact).json["first_name"] == "Shared"
        assert world.owner.get(note).json["body"] == "team note"


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "non-member"])
def test_member_management(alice: Api, anon: Api, extra: Api, role: str | None) -> None:
    world = _shared_world(alice, anon, role)
    caller, allowed = world.caller, role in ALLOWED["members"]
    members = f"/workspaces/{world.workspace_id}/members"
    _expect(caller.post(members, {"username": "frank", "role": "viewer"}).status, allowed, role, 201)
    if not allowed:
        add(alice, world.workspace_id, "frank", "viewer")
    _expect(caller.patch(f"{members}/{extra.user['id']}", {"role": "editor"}).status, allowed, role, 200)
    _expect(caller.delete(f"{members}/{extra.user['id']}").status, allowed, role, 204)


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "non-member"])
def test_rename(alice: Api, anon: Api, role: str | None) -> None:
    world = _shared_world(alice, anon, role)
    reply = world.caller.patch(f"/workspaces/{world.workspace_id}", {"name": "New name"})
    _expect(reply.status, role in ALLOWED["rename"], role, 200)


@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "non-member"])
def test_delete(alice: Api, anon: Api, role: str | None) -> None:
    world = _shared_world(alice, anon, role)
    reply = world.caller.delete(f"/workspaces/{world.workspace_id}")
    _expect(reply.status, role in ALLOWED["delete"], role, 204)


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_every_member_may_leave(alice: Api, anon: Api, role: str) -> None:
    world = _shared_world(alice, anon, role)
    assert world.caller.delete(f"/workspaces/{world.workspace_id}/members/{world.caller.user['id']}").status == 204
    problem(world.caller.get(f"/workspaces/{world.workspace_id}"), 404)
    assert problem(token_reply(world.caller, world.caller.user["username"], world.workspace_id), 403)


def test_the_personal_workspace_matrix(alice: Api, bob: Api) -> None:
    """Its owner does everything but share or delete it (409); anyone else: 403 for a token
    into it, 404 for every id in it."""
    personal = alice.user["id"]
    contact = alice.post("/contacts", {"first_name": "Mine"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "mine"}).json
    assert alice.patch(f"/contacts/{contact['id']}", {"title": "T"}).status == 200
    assert alice.patch(f"/workspaces/{personal}", {"name": "Alice's"}).status == 200
    assert alice.get(f"/workspaces/{personal}/members").status == 200
    problem(alice.post(f"/workspaces/{personal}/members", {"username": "bob", "role": "viewer"}), 409)
    problem(alice.delete(f"/workspaces/{personal}"), 409)
    problem(token_reply(bob, "bob", personal), 403)
    for path in (f"/contacts/{contact['id']}", f"/notes/{note['id']}", f"/workspaces/{personal}"):
        problem(bob.get(path), 404)
    problem(bob.patch(f"/workspaces/{personal}", {"name": "Mine now"}), 404)
    problem(bob.delete(f"/workspaces/{personal}"), 404)


# ---- isolation ---------------------------------------------------------------------------


def test_a_second_workspaces_contacts_never_appear_in_the_firsts(alice: Api) -> None:
    first, second = new_workspace(alice, "First"), new_workspace(alice, "Second")
    in_first, in_second = acting_in(alice, first), acting_in(alice, second)
    a = in_first.post("/contacts", {"first_name": "In first"}).json
    b = in_second.post("/contacts", {"first_name": "In second"}).json
    personal = alice.post("/contacts", {"first_name": "Personal"}).json
    assert [c["id"] for c in in_first.get("/contacts").json["items"]] == [a["id"]]
    assert [c["id"] for c in in_second.get("/contacts").json["items"]] == [b["id"]]
    assert [c["id"] for c in alice.get("/contacts").json["items"]] == [personal["id"]]
    problem(in_first.get(f"/contacts/{b['id']}"), 404)
    problem(in_first.post(f"/contacts/{b['id']}/notes", {"body": "x"}), 404)
    problem(in_second.delete(f"/contacts/{a['id']}"), 404)


def test_a_member_sees_and_edits_the_data_exactly_as_the_owner(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "editor")
    owner, member = acting_in(alice, workspace_id), acting_in(bob, workspace_id)
    contact = owner.post("/contacts", {"first_name": "Ada"}).json
    assert member.get(f"/contacts/{contact['id']}").json == contact
    changed = member.patch(f"/contacts/{contact['id']}", {"company": "ACME"}).json
    assert owner.get(f"/contacts/{contact['id']}").json == changed
    note = member.post(f"/contacts/{contact['id']}/notes", {"body": "by bob"}).json
    assert owner.get(f"/contacts/{contact['id']}/notes").json["items"] == [note]
    assert owner.get("/contacts").json == member.get("/contacts").json


def test_a_role_change_counts_at_once_for_management_but_the_token_keeps_its_role(alice: Api, bob: Api) -> None:
    """Management routes read the membership; contacts and notes use the token's role until it
    expires (the documented window)."""
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "admin")
    bob_in = acting_in(bob, workspace_id)
    assert alice.patch(f"/workspaces/{workspace_id}/members/{bob.user['id']}", {"role": "viewer"}).status == 200
    problem(bob_in.patch(f"/workspaces/{workspace_id}", {"name": "Bob's now"}), 403)  # at once
    assert bob_in.post("/contacts", {"first_name": "Window"}).status == 201  # old token, old role
    fresh = acting_in(bob, workspace_id)
    problem(fresh.post("/contacts", {"first_name": "No"}), 403)
    assert fresh.get("/auth/me").json["role"] == "viewer"
