"""Refresh tokens and workspaces together, through the member routes (no item written by hand):
membership and role are read again on every refresh; removal, role changes and deletion count
at the next refresh; the access token keeps what it named until it expires (the window)."""

from __future__ import annotations

from typing import Any

import jwt

from tests.api import PASSWORD
from tests.conftest import Api, problem
from tests.workspaces import add, new_workspace, token_reply


def _claims(answer: Any) -> dict[str, Any]:
    return dict(jwt.decode(answer.json["access_token"], options={"verify_signature": False}))


def _as(api: Api, answer: Any) -> Api:
    return Api(api.client, token=answer.json["access_token"], user=api.user)


def test_a_member_signs_in_then_refreshes_within_the_workspace(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "editor")
    signed_in = token_reply(bob, "bob", team)
    assert (_claims(signed_in)["wid"], _claims(signed_in)["role"]) == (team, "editor")
    refreshed = bob.refresh(signed_in.json["refresh_token"])  # no workspace_id: the sign-in's
    assert refreshed.status == 200, refreshed.body
    assert (_claims(refreshed)["wid"], _claims(refreshed)["role"]) == (team, "editor")
    created = _as(bob, refreshed).post("/contacts", {"first_name": "Shared"})
    assert created.status == 201
    assert [c["id"] for c in alice_in(alice, team).get("/contacts").json["items"]] == [created.json["id"]]


def alice_in(alice: Api, team: str) -> Api:
    return _as(alice, token_reply(alice, "alice", team))


def test_a_role_change_shows_in_the_next_access_token(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "editor")
    token = token_reply(bob, "bob", team).json["refresh_token"]
    assert alice.patch(f"/workspaces/{team}/members/{bob.user['id']}", {"role": "viewer"}).status == 200
    demoted = bob.refresh(token)
    assert _claims(demoted)["role"] == "viewer"
    body = problem(_as(bob, demoted).post("/contacts", {"first_name": "Nope"}), 403)
    assert body["detail"] == "Your role in this workspace (viewer) cannot do this; it needs editor."


def test_a_removed_member_cannot_refresh_into_the_workspace_but_keeps_their_own(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "admin")
    signed_in = token_reply(bob, "bob", team)
    access_before = _as(bob, signed_in)
    assert alice.delete(f"/workspaces/{team}/members/{bob.user['id']}").status == 204
    removed = problem(bob.refresh(signed_in.json["refresh_token"]), 403)
    assert removed["error"] == "invalid_scope"
    elsewhere = problem(bob.refresh(signed_in.json["refresh_token"], "not-a-workspace"), 403)
    assert elsewhere["detail"] == removed["detail"]  # a malformed id is refused alike
    home = bob.refresh(signed_in.json["refresh_token"], bob.user["id"])  # refused, not spent
    assert home.status == 200 and _claims(home)["wid"] == bob.user["id"]
    # The window: the access token issued before the removal works until it expires.
    assert access_before.get("/contacts").status == 200


def test_a_member_leaving_cannot_refresh_back_in(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "viewer")
    token = token_reply(bob, "bob", team).json["refresh_token"]
    assert bob.delete(f"/workspaces/{team}/members/{bob.user['id']}").status == 204
    assert problem(bob.refresh(token, team), 403)["error"] == "invalid_scope"


def test_after_a_workspace_is_deleted_no_refresh_reaches_it(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "editor")
    token = token_reply(bob, "bob", team).json["refresh_token"]
    owner_token = token_reply(alice, "alice", team).json["refresh_token"]
    assert alice.delete(f"/workspaces/{team}").status == 204
    assert problem(bob.refresh(token), 403)["error"] == "invalid_scope"
    assert problem(alice.refresh(owner_token), 403)["error"] == "invalid_scope"


def test_a_password_change_ends_sign_ins_into_every_workspace(alice: Api, bob: Api) -> None:
    team = new_workspace(alice)
    add(alice, team, "bob", "editor")
    in_team = token_reply(bob, "bob", team).json["refresh_token"]
    at_home = token_reply(bob, "bob", None).json["refresh_token"]
    changed = bob.post("/auth/password", {"current_password": PASSWORD, "new_password": "a new one!"})
    assert changed.status == 204, changed.body
    for token in (in_team, at_home):
        assert problem(bob.refresh(token), 401)["error"] == "invalid_grant"
