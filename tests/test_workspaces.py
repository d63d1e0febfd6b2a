"""Workspaces and members through HTTP: every route and status, and hostile input."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import runtime
from chalicelib.models import USER_PREFIX, Membership, UserRecord, Workspace
from tests.conftest import Api, before_first, problem
from tests.workspaces import acting_in, add, before_first_write, new_workspace, token_reply

MISSING = "01M8FP1CYTGFW5FGC7TXSJ3ETH"


@pytest.fixture
def carol(anon: Api) -> Api:
    return anon.sign_up("carol")


# ---- registration and the personal workspace ---------------------------------------------


def test_register_writes_the_personal_workspace_and_owner_membership(alice: Api) -> None:
    user_id = alice.user["id"]
    workspace = Workspace.get(user_id, consistent_read=True)
    assert workspace.personal is True and workspace.name == "Personal" and workspace.created_by == user_id
    membership = Membership.get(user_id, user_id, consistent_read=True)
    assert (membership.role, membership.username) == ("owner", "alice")


def test_list_starts_with_the_personal_workspace(alice: Api) -> None:
    team = new_workspace(alice, "Team")
    page = alice.get("/workspaces").json
    assert page["items"] == [
        {"id": alice.user["id"], "name": "Personal", "role": "owner", "personal": True},
        {"id": team, "name": "Team", "role": "owner", "personal": False},
    ]
    assert page["next_cursor"] is None


def test_a_user_registered_before_workspaces_still_works(alice: Api) -> None:
    """No workspace or membership item: the personal workspace is made up where it is read."""
    user_id = alice.user["id"]
    Workspace(user_id).delete()
    Membership(user_id, user_id).delete()
    assert alice.get("/workspaces").json["items"] == [
        {"id": user_id, "name": "Personal", "role": "owner", "personal": True}
    ]
    assert alice.get(f"/workspaces/{user_id}").json["personal"] is True
    members = alice.get(f"/workspaces/{user_id}/members").json["items"]
    assert members == [{"user_id": user_id, "username": "alice", "role": "owner"}]
    assert alice.post("/contacts", {"first_name": "Old"}).status == 201
    assert acting_in(alice, user_id).get("/contacts").json["items"][0]["first_name"] == "Old"
    renamed = alice.patch(f"/workspaces/{user_id}", {"name": "Mine"})
    assert renamed.status == 200 and renamed.json["name"] == "Mine"
    assert Workspace.get(user_id).personal is True


def test_register_is_still_one_transaction_and_conflicts_still_409(anon: Api, alice: Api) -> None:
    taken = problem(anon.register("alice", email="other@example.com"), 409)
    assert taken["detail"] == "That username is already taken."
    assert problem(anon.register("alice2", email="alice@example.com"), 409)["detail"].startswith("That email")


# ---- workspaces --------------------------------------------------------------------------


def test_create_get_rename_delete(alice: Api) -> None:
    created = alice.post("/workspaces", {"name": "  Sales  "})
    assert created.status == 201
    assert created.json == {"id": created.json["id"], "name": "Sales", "role": "owner", "personal": False}
    workspace_id = created.json["id"]
    assert alice.get(f"/workspaces/{workspace_id}").json == created.json
    renamed = alice.patch(f"/workspaces/{workspace_id}", {"name": "Sales EMEA"})
    assert renamed.status == 200 and renamed.json["name"] == "Sales EMEA"
    assert alice.delete(f"/workspaces/{workspace_id}").status == 204
    problem(alice.get(f"/workspaces/{workspace_id}"), 404)
    assert [w["id"] for w in alice.get("/workspaces").json["items"]] == [alice.user["id"]]
    assert Membership.count(workspace_id) == 0


def test_creator_is_the_one_owner(alice: Api) -> None:
    workspace_id = new_workspace(alice)
    assert Workspace.get(workspace_id).owners == 1
    assert alice.get(f"/workspaces/{workspace_id}/members").json == {
        "items": [{"user_id": alice.user["id"], "username": "alice", "role": "owner"}],
        "next_cursor": None,
    }


def test_personal_workspace_cannot_be_deleted_or_shared(alice: Api, bob: Api) -> None:
    personal = alice.user["id"]
    assert "cannot be deleted" in problem(alice.delete(f"/workspaces/{personal}"), 409)["detail"]
    body = problem(alice.post(f"/workspaces/{personal}/members", {"username": "bob", "role": "viewer"}), 409)
    assert "personal workspace cannot be shared" in body["detail"]
    problem(alice.patch(f"/workspaces/{personal}/members/{personal}", {"role": "viewer"}), 409)
    problem(alice.delete(f"/workspaces/{personal}/members/{personal}"), 409)


def test_list_pages_with_signed_cursors(alice: Api, bob: Api) -> None:
    ids = [new_workspace(alice, f"W{i}") for i in range(4)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = alice.get("/workspaces?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [alice.user["id"], *ids]
    first = alice.get("/workspaces?limit=1").json
    assert [w["id"] for w in first["items"]] == [alice.user["id"]]
    assert [w["id"] for w in alice.get(f"/workspaces?limit=1&cursor={first['next_cursor']}").json["items"]] == ids[:1]
    # A cursor is bound to its user: bob cannot use alice's.
    problem(bob.get(f"/workspaces?cursor={first['next_cursor']}"), 400)


def test_members_page(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "editor")
    add(alice, workspace_id, "carol", "viewer")
    first = alice.get(f"/workspaces/{workspace_id}/members?limit=2").json
    rest = alice.get(f"/workspaces/{workspace_id}/members?limit=2&cursor={first['next_cursor']}").json
    members = first["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert sorted((m["username"], m["role"]) for m in members) == [
        ("alice", "owner"),
        ("bob", "editor"),
        ("carol", "viewer"),
    ]


# ---- members -----------------------------------------------------------------------------


def test_add_by_username_or_email(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id = new_workspace(alice)
    by_name = alice.post(f"/workspaces/{workspace_id}/members", {"username": "BOB", "role": "editor"})
    assert by_name.status == 201
    assert by_name.json == {"user_id": bob.user["id"], "username": "bob", "role": "editor"}
    by_email = alice.post(f"/workspaces/{workspace_id}/members", {"email": "Carol@Example.com", "role": "viewer"})
    assert by_email.status == 201 and by_email.json["username"] == "carol"
    listed = [w for w in bob.get("/workspaces").json["items"] if w["id"] == workspace_id]
    assert listed == [{"id": workspace_id, "name": "Team", "role": "editor", "personal": False}]


def test_add_member_problems(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    members = f"/workspaces/{workspace_id}/members"
    assert "No user" in problem(alice.post(members, {"username": "nobody", "role": "viewer"}), 404)["detail"]
    assert "No user" in problem(alice.post(members, {"email": "no@example.com", "role": "viewer"}), 404)["detail"]
    add(alice, workspace_id, "bob", "viewer")
    assert "already a member" in problem(alice.post(members, {"username": "bob", "role": "editor"}), 409)["detail"]
    assert "already a member" in problem(alice.post(members, {"username": "alice", "role": "owner"}), 409)["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"role": "viewer"},  # neither username nor email
        {"username": "bob", "email": "bob@example.com", "role": "viewer"},  # both
        {"username": None, "email": "bob@example.com", "role": "viewer"},
        {"username": "bob", "role": "superuser"},
        {"username": "bob", "role": "Owner"},
        {"username": "bob"},
        {"username": "bob", "role": "viewer", "workspace_id": MISSING},  # unknown field
        {"username": "b", "role": "viewer"},
    ],
)
def test_add_member_refuses_bad_bodies(alice: Api, bob: Api, body: dict[str, Any]) -> None:
    workspace_id = new_workspace(alice)
    problem(alice.post(f"/workspaces/{workspace_id}/members", body), 422)


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": 5}, {"name": "a\u0000b"}, {"name": "A", "x": 1}],
)
def test_bad_workspace_names_are_refused(alice: Api, body: dict[str, Any]) -> None:
    problem(alice.post("/workspaces", body), 422)
    workspace_id = new_workspace(alice)
    problem(alice.patch(f"/workspaces/{workspace_id}", body), 422)


def test_a_name_of_100_characters_is_fine(alice: Api) -> None:
    assert alice.post("/workspaces", {"name": "x" * 100}).status == 201


def test_change_role_and_leave(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "viewer")
    member = f"/workspaces/{workspace_id}/members/{bob.user['id']}"
    changed = alice.patch(member, {"role": "admin"})
    assert changed.status == 200
    assert changed.json == {"user_id": bob.user["id"], "username": "bob", "role": "admin"}
    assert bob.get(f"/workspaces/{workspace_id}").json["role"] == "admin"
    assert bob.delete(member).status == 204  # leaving
    problem(bob.get(f"/workspaces/{workspace_id}"), 404)
    problem(alice.delete(member), 404)  # no longer a member
    problem(alice.patch(member, {"role": "viewer"}), 404)


@pytest.mark.parametrize("body", [{}, {"role": "god"}, {"role": None}, {"role": "viewer", "extra": 1}])
def test_change_role_refuses_bad_bodies(alice: Api, bob: Api, body: dict[str, Any]) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "viewer")
    problem(alice.patch(f"/workspaces/{workspace_id}/members/{bob.user['id']}", body), 422)


def test_ownership_transfer(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "editor")
    assert alice.patch(f"/workspaces/{workspace_id}/members/{bob.user['id']}", {"role": "owner"}).status == 200
    assert Workspace.get(workspace_id).owners == 2
    assert alice.delete(f"/workspaces/{workspace_id}/members/{alice.user['id']}").status == 204
    assert Workspace.get(workspace_id).owners == 1
    assert bob.get(f"/workspaces/{workspace_id}").json["role"] == "owner"
    # bob, now the last owner, can neither leave nor step down.
    me = f"/workspaces/{workspace_id}/members/{bob.user['id']}"
    assert "needs an owner" in problem(bob.delete(me), 409)["detail"]
    assert "needs an owner" in problem(bob.patch(me, {"role": "admin"}), 409)["detail"]
    assert Workspace.get(workspace_id).owners == 1


def test_an_owner_can_step_down_while_another_owner_remains(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "owner")
    assert Workspace.get(workspace_id).owners == 2
    assert alice.patch(f"/workspaces/{workspace_id}/members/{alice.user['id']}", {"role": "viewer"}).status == 200
    assert Workspace.get(workspace_id).owners == 1
    problem(bob.patch(f"/workspaces/{workspace_id}/members/{bob.user['id']}", {"role": "viewer"}), 409)


def test_the_last_owner_holds_even_when_the_count_is_raced(alice: Api, bob: Api) -> None:
    """The condition lives in DynamoDB: with the count at 1, no demotion of an owner commits,
    whatever the reads before it saw (two owners demoting each other at once)."""
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "owner")
    Workspace(workspace_id).update(actions=[Workspace.owners.set(1)])  # as if the other demotion just committed
    problem(alice.patch(f"/workspaces/{workspace_id}/members/{bob.user['id']}", {"role": "admin"}), 409)
    assert Membership.get(workspace_id, bob.user["id"]).role == "owner"


def test_an_admin_cannot_grant_or_remove_owner(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "admin")
    add(alice, workspace_id, "carol", "viewer")
    members = f"/workspaces/{workspace_id}/members"
    problem(bob.post(members, {"username": "alice", "role": "owner"}), 403)  # (checked before membership)
    problem(bob.patch(f"{members}/{carol.user['id']}", {"role": "owner"}), 403)
    problem(bob.patch(f"{members}/{bob.user['id']}", {"role": "owner"}), 403)
    problem(bob.patch(f"{members}/{alice.user['id']}", {"role": "admin"}), 403)
    problem(bob.delete(f"{members}/{alice.user['id']}"), 403)
    # What an admin may do.
    assert bob.patch(f"{members}/{carol.user['id']}", {"role": "editor"}).status == 200
    assert bob.delete(f"{members}/{carol.user['id']}").status == 204


# ---- a caller demoted or removed during the request ----------------------------------------
# The caller's role is read first, then checked again by the write itself: alice's change to
# bob's membership commits between bob's read and bob's write, and bob's write must not commit.


def _team_with_admin(alice: Api) -> tuple[str, str]:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "admin")
    add(alice, workspace_id, "carol", "viewer")
    return workspace_id, f"/workspaces/{workspace_id}/members"


def test_an_admin_demoted_mid_request_cannot_change_a_role(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id, members = _team_with_admin(alice)
    demote = lambda: alice.patch(f"{members}/{bob.user['id']}", {"role": "viewer"})  # noqa: E731
    with before_first_write(demote):
        reply = bob.patch(f"{members}/{carol.user['id']}", {"role": "admin"})
    assert "you are viewer" in problem(reply, 403)["detail"]
    assert Membership.get(workspace_id, carol.user["id"]).role == "viewer"


def test_an_admin_removed_mid_request_cannot_remove_a_member(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id, members = _team_with_admin(alice)
    with before_first_write(lambda: alice.delete(f"{members}/{bob.user['id']}")):
        reply = bob.delete(f"{members}/{carol.user['id']}")
    problem(reply, 404)
    assert Membership.get(workspace_id, carol.user["id"]).role == "viewer"


def test_an_admin_demoted_mid_request_cannot_rename(alice: Api, bob: Api, carol: Api) -> None:
    workspace_id, members = _team_with_admin(alice)
    with before_first_write(lambda: alice.patch(f"{members}/{bob.user['id']}", {"role": "editor"})):
        reply = bob.patch(f"/workspaces/{workspace_id}", {"name": "Renamed"})
    problem(reply, 403)
    assert Workspace.get(workspace_id).name == "Team"


def test_an_owner_demoted_mid_request_cannot_make_an_owner(alice: Api, bob: Api, carol: Api) -> None:
    """Making an owner needs the caller to be an owner still, not just admin."""
    workspace_id, members = _team_with_admin(alice)
    assert alice.patch(f"{members}/{bob.user['id']}", {"role": "owner"}).status == 200
    with before_first_write(lambda: alice.patch(f"{members}/{bob.user['id']}", {"role": "admin"})):
        reply = bob.patch(f"{members}/{carol.user['id']}", {"role": "owner"})
    assert "you are admin" in problem(reply, 403)["detail"]
    assert Membership.get(workspace_id, carol.user["id"]).role == "viewer"
    assert Workspace.get(workspace_id).owners == 1


def test_a_role_changed_and_restored_mid_request_is_409(alice: Api, bob: Api, carol: Api) -> None:
    """Demoted before the write, an admin again when the request reads why it failed: the
    answer is to try again, and nothing was written."""
    workspace_id, members = _team_with_admin(alice)
    bob_at = f"{members}/{bob.user['id']}"
    demote = lambda: alice.patch(bob_at, {"role": "viewer"})  # noqa: E731
    restore = lambda: alice.patch(bob_at, {"role": "admin"})  # noqa: E731
    with before_first_write(demote), before_first("GetItem", restore, runtime.settings().memberships_table):
        reply = bob.delete(f"{members}/{carol.user['id']}")
    assert "changed during the request" in problem(reply, 409)["detail"]
    assert Membership.get(workspace_id, carol.user["id"]).role == "viewer"
    assert bob.delete(f"{members}/{carol.user['id']}").status == 204  # the retry


def test_malformed_and_unknown_ids_are_404(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    for bad in ("not-an-id", MISSING, bob.user["id"]):  # malformed, missing, someone's personal
        problem(alice.get(f"/workspaces/{bad}"), 404)
        problem(alice.patch(f"/workspaces/{bad}", {"name": "x"}), 404)
        problem(alice.delete(f"/workspaces/{bad}"), 404)
        problem(alice.get(f"/workspaces/{bad}/members"), 404)
        problem(alice.post(f"/workspaces/{bad}/members", {"username": "bob", "role": "viewer"}), 404)
        problem(alice.patch(f"/workspaces/{bad}/members/{alice.user['id']}", {"role": "viewer"}), 404)
        problem(alice.delete(f"/workspaces/{bad}/members/{alice.user['id']}"), 404)
        problem(alice.patch(f"/workspaces/{workspace_id}/members/{bad}", {"role": "viewer"}), 404)
        problem(alice.delete(f"/workspaces/{workspace_id}/members/{bad}"), 404)


def test_removing_a_non_member_is_404(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    assert problem(alice.delete(f"/workspaces/{workspace_id}/members/{bob.user['id']}"), 404)["detail"] == (
        "Member not found."
    )


# ---- signing in to a workspace -----------------------------------------------------------


def test_token_into_a_workspace_carries_it_and_the_role(alice: Api, bob: Api) -> None:
    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "viewer")
    me = acting_in(bob, workspace_id).get("/auth/me").json
    assert me["workspace_id"] == workspace_id and me["role"] == "viewer"
    assert me["id"] == bob.user["id"] and me["username"] == "bob"
    default = bob.get("/auth/me").json
    assert default["workspace_id"] == bob.user["id"] and default["role"] == "owner"
    empty = token_reply(bob, "bob", "")
    assert empty.status == 200  # an empty field means the personal workspace


def test_token_into_a_workspace_you_are_not_in_is_403_alike(alice: Api, bob: Api) -> None:
    """Foreign, missing, malformed and someone's personal workspace: one answer, nothing told."""
    candidates = [new_workspace(alice), MISSING, "x'; DROP", alice.user["id"]]
    bodies = []
    for workspace_id in candidates:
        body = problem(token_reply(bob, "bob", workspace_id), 403)
        bodies.append({k: v for k, v in body.items() if k != "request_id"})
    assert bodies[0]["detail"] == "You are not a member of that workspace."
    assert bodies[0]["error"] == "invalid_scope"  # OAuth 2.0's member, as the refresh grant's 403 has
    assert all(body == bodies[0] for body in bodies), bodies


def test_a_wrong_password_with_a_workspace_is_still_401(alice: Api) -> None:
    workspace_id = new_workspace(alice)
    reply = alice.token_form(f"username=alice&password=wrong-password&workspace_id={workspace_id}".encode())
    problem(reply, 401)


def test_user_record_is_untouched_by_workspaces(alice: Api) -> None:
    user = UserRecord.get(USER_PREFIX + alice.user["id"])
    assert user.username == "alice"
