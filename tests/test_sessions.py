"""Sessions through HTTP: refresh tokens (rotation, reuse detection, races, expiry, workspaces),
sign-out and password change, and the OAuth 2.0 error shapes of the token endpoint."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest

from chalicelib import runtime
from chalicelib.ids import new_id, utc_now
from chalicelib.models import USER_PREFIX, Membership, SessionRecord, UserRecord
from tests.api import PASSWORD, Reply
from tests.conftest import TEST_SECRET, Api, CallCounter, before_first, problem

NEW_PASSWORD = "a brand new passphrase"


def claims(access_token: str) -> dict[str, Any]:
    return dict(jwt.decode(access_token, TEST_SECRET, algorithms=["HS256"], audience="contact-notes-api"))


def invalid_grant(reply: Reply) -> dict[str, Any]:
    body = problem(reply, 401)
    assert body["error"] == "invalid_grant"
    assert reply.header("www-authenticate") == "Bearer"
    return body


def me(api: Api, access_token: str) -> Reply:
    return api.get("/auth/me", headers={"authorization": f"Bearer {access_token}"})


def family_of(token: str) -> str:
    return token.split(".")[1]


def stored_items(table: str) -> list[dict[str, Any]]:
    """Every item of a table, read by a client of the test's own (not counted: no request scans)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    return list(client.scan(TableName=table)["Items"])


# ---- the refresh token of a sign-in -----------------------------------------------------------


def test_sign_in_answers_a_refresh_token_stored_only_as_a_hash(alice: Api) -> None:
    reply = alice.login("alice")
    assert reply.status == 200
    token = reply.json["refresh_token"]
    assert reply.header("cache-control") == "no-store"
    secret = token.split(".")[-1]
    assert len(secret) >= 43  # 256 bits, base64url
    items = stored_items(runtime.settings().sessions_table)
    assert not [item for item in items if token in str(item) or secret in str(item)]
    digest = hashlib.sha256(token.encode()).hexdigest()
    kept = {item["pk"]["S"]: item for item in items}
    assert kept[f"T#{digest}"]["state"] == {"S": "current"}
    family = kept[f"F#{family_of(token)}"]
    assert family["user_id"]["S"] == family["workspace_id"]["S"] == alice.user["id"]  # the personal workspace


def test_each_sign_in_starts_its_own_family(alice: Api) -> None:
    first, second = (alice.login("alice").json["refresh_token"] for _ in range(2))
    assert family_of(first) != family_of(second)
    assert alice.refresh(first).status == 200
    assert alice.refresh(second).status == 200


# ---- rotation and reuse detection -------------------------------------------------------------


def test_refresh_rotates_the_pair(alice: Api) -> None:
    token = alice.refresh_token or ""
    for _ in range(3):
        reply = alice.refresh(token)
        assert reply.status == 200, reply.body
        answer = reply.json
        assert set(answer) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert answer["refresh_token"] != token and family_of(answer["refresh_token"]) == family_of(token)
        assert reply.header("cache-control") == "no-store"
        assert answer["expires_in"] == 15 * 60
        issued = claims(answer["access_token"])
        assert (issued["sub"], issued["wid"], issued["role"]) == (alice.user["id"], alice.user["id"], "owner")
        assert me(alice, answer["access_token"]).json == {
            **alice.user,
            "workspace_id": alice.user["id"],
            "role": "owner",
        }
        token = answer["refresh_token"]


def test_a_rotated_token_revokes_its_family(alice: Api) -> None:
    old = alice.refresh_token or ""
    newest = alice.refresh(old).json["refresh_token"]
    body = invalid_grant(alice.refresh(old))
    assert "already used" in body["detail"]
    invalid_grant(alice.refresh(newest))  # the family's newest token fails too
    other = alice.login("alice").json["refresh_token"]
    assert alice.refresh(other).status == 200  # another sign-in is another family


def test_racing_refreshes_with_one_token_exactly_one_wins(alice: Api, dynamodb: CallCounter) -> None:
    """The competitor's refresh commits between this one's read and its write."""
    token = alice.refresh_token or ""
    rival: list[Reply] = []
    with before_first("TransactWriteItems", lambda: rival.append(alice.refresh(token))):
        loser = alice.refresh(token)
    winner = rival[0]
    assert winner.status == 200, winner.body
    invalid_grant(loser)
    assert me(alice, winner.json["access_token"]).status == 200
    # The same token twice is reuse, however close together: the family is revoked.
    invalid_grant(alice.refresh(winner.json["refresh_token"]))


def test_the_lockout_guards_the_password_grant_only(anon: Api, alice: Api, limits: Any) -> None:
    limits(LOGIN_MAX_FAILURES=1, LOGIN_BACKOFF_BASE_SECONDS=600)
    problem(alice.login("alice", "wrong password!"), 401)
    problem(alice.login("alice"), 429)  # locked
    assert anon.refresh(alice.refresh_token or "").status == 200


def test_refresh_needs_the_user(alice: Api) -> None:
    UserRecord("USER#" + alice.user["id"]).delete()
    invalid_grant(alice.refresh(alice.refresh_token or ""))


# ---- expiry after REFRESH_TOKEN_DAYS without use ----------------------------------------------


def _family(token: str) -> SessionRecord:
    return SessionRecord.get("F#" + family_of(token), consistent_read=True)


def _last_used(token: str, days_ago: float, expires_in_days: float) -> None:
    """Set up a family as if last used `days_ago` (what the clock would do)."""
    now = datetime.now(UTC)
    used = (now - timedelta(days=days_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    family = _family(token)
    family.update(
        actions=[
            SessionRecord.updated_at.set(used),
            SessionRecord.expires_at.set(now + timedelta(days=expires_in_days)),
        ]
    )


def test_a_family_expires_after_refresh_token_days_of_inactivity(anon: Api, limits: Any) -> None:
    limits(REFRESH_TOKEN_DAYS=2)
    alice = anon.sign_up("alice")
    token = alice.refresh_token or ""
    horizon = datetime.now(UTC) + timedelta(days=2)
    assert abs((_family(token).expires_at - horizon).total_seconds()) < 60  # the TTL attribute
    _last_used(token, days_ago=1.5, expires_in_days=0.5)
    token = alice.refresh(token).json["refresh_token"]  # within the window: it slides
    assert abs((_family(token).expires_at - horizon).total_seconds()) < 60
    _last_used(token, days_ago=2.1, expires_in_days=-0.1)  # past the TTL, not yet deleted by DynamoDB
    invalid_grant(alice.refresh(token))


def test_a_lowered_refresh_token_days_counts_at_once(anon: Api, limits: Any) -> None:
    alice = anon.sign_up("alice")
    token = alice.refresh_token or ""
    _last_used(token, days_ago=3, expires_in_days=27)  # within the 30 days it was issued for
    limits(REFRESH_TOKEN_DAYS=2)
    invalid_grant(alice.refresh(token))


# ---- workspaces: membership and role read again on every refresh -------------------------------


def _member(workspace_id: str, user_id: str, role: str) -> None:
    now = utc_now()
    Membership(workspace_id, user_id, role=role, created_at=now, updated_at=now).save()


def test_refresh_switches_workspace_and_rereads_the_role(alice: Api, dynamodb: CallCounter) -> None:
    shared = new_id()
    _member(shared, alice.user["id"], "editor")
    dynamodb.reset()
    reply = alice.refresh(alice.refresh_token or "", shared)
    assert reply.status == 200, reply.body
    # Into a shared workspace: the membership is one GetItem more than a personal refresh.
    assert dynamodb.by_operation() == {"BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1}
    assert (claims(reply.json["access_token"])["wid"], claims(reply.json["access_token"])["role"]) == (shared, "editor")
    _member(shared, alice.user["id"], "viewer")  # demoted
    again = alice.refresh(reply.json["refresh_token"])  # no workspace_id: the family's workspace
    assert (claims(again.json["access_token"])["wid"], claims(again.json["access_token"])["role"]) == (shared, "viewer")
    home = alice.refresh(again.json["refresh_token"], alice.user["id"])
    assert (claims(home.json["access_token"])["wid"], claims(home.json["access_token"])["role"]) == (
        alice.user["id"],
        "owner",
    )


def test_a_removed_member_cannot_refresh_into_the_workspace(alice: Api) -> None:
    shared = new_id()
    _member(shared, alice.user["id"], "admin")
    token = alice.refresh(alice.refresh_token or "", shared).json["refresh_token"]
    Membership(shared, alice.user["id"]).delete()
    removed = problem(alice.refresh(token), 403)
    assert removed["error"] == "invalid_scope"
    unknown = problem(alice.refresh(token, new_id()), 403)  # a workspace that does not exist
    assert removed["detail"] == unknown["detail"]  # nothing tells them apart
    # Refused, not rotated: the same token still refreshes into a workspace of the user's.
    home = alice.refresh(token, alice.user["id"])
    assert home.status == 200, home.body


def test_refresh_into_someone_elses_workspace_is_403(alice: Api, bob: Api) -> None:
    problem(alice.refresh(alice.refresh_token or "", bob.user["id"]), 403)  # bob's personal workspace


def test_a_token_with_another_users_id_is_refused_and_harmless(alice: Api, bob: Api) -> None:
    token = alice.refresh_token or ""
    forged = ".".join([bob.user["id"], *token.split(".")[1:]])
    invalid_grant(alice.refresh(forged))
    assert claims(alice.refresh(token).json["access_token"])["sub"] == alice.user["id"]  # not revoked


# ---- sign-out ---------------------------------------------------------------------------------


def test_sign_out_revokes_the_family(alice: Api, dynamodb: CallCounter) -> None:
    token = alice.refresh_token or ""
    newest = alice.refresh(token).json["refresh_token"]
    other = alice.login("alice").json["refresh_token"]
    reply = alice.post("/auth/logout", {"refresh_token": newest}, auth=False)
    assert reply.status == 204 and reply.body == b""
    invalid_grant(alice.refresh(newest))
    assert alice.post("/auth/logout", {"refresh_token": newest}, auth=False).status == 204  # idempotent
    assert alice.refresh(other).status == 200  # other sign-ins go on
    # An older token of a family signs it out too (it proves the holder had it).
    rotated = alice.login("alice").json["refresh_token"]
    current = alice.refresh(rotated).json["refresh_token"]
    assert alice.post("/auth/logout", {"refresh_token": rotated}, auth=False).status == 204
    invalid_grant(alice.refresh(current))


@pytest.mark.parametrize(
    "token",
    ["garbage", "01M8FP1CYTGFW5FGC7TXSJ3ETH.01M8FP1CYTGFW5FGC7TXSJ3ETH." + "A" * 43, "x" * 512],
    ids=["garbage", "unknown of our shape", "longest"],
)
def test_signing_out_an_unknown_token_is_204(anon: Api, token: str) -> None:
    assert anon.post("/auth/logout", {"refresh_token": token}).status == 204


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"not json", 400),
        (b"[]", 422),
        (b"{}", 422),
        (b'{"refresh_token": ""}', 422),
        (b'{"refresh_token": 5}', 422),
        (b'{"refresh_token": "a", "extra": 1}', 422),
        (b'{"refresh_token": "a", "refresh_token": "b"}', 400),
        (('{"refresh_token": "' + "x" * 513 + '"}').encode(), 422),
    ],
)
def test_sign_out_rejects_malformed_bodies(anon: Api, body: bytes, status: int) -> None:
    reply = anon.request("POST", "/auth/logout", raw=body, headers={"content-type": "application/json"})
    problem(reply, status)


def test_sign_out_wants_json(anon: Api, alice: Api) -> None:
    form = f"refresh_token={alice.refresh_token}".encode()
    reply = anon.request(
        "POST", "/auth/logout", raw=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    problem(reply, 415)
    assert alice.refresh(alice.refresh_token or "").status == 200  # nothing was signed out


# ---- password change --------------------------------------------------------------------------


def change(api: Api, current: str = PASSWORD, new: str = NEW_PASSWORD) -> Reply:
    return api.post("/auth/password", {"current_password": current, "new_password": new})


def test_password_change_revokes_every_sign_in(alice: Api) -> None:
    families = [alice.refresh_token or "", alice.login("alice").json["refresh_token"]]
    families.append(alice.refresh(alice.login("alice").json["refresh_token"]).json["refresh_token"])
    reply = change(alice)
    assert reply.status == 204 and reply.body == b""
    for token in families:
        invalid_grant(alice.refresh(token))
    invalid_grant(alice.login("alice"))  # the old password is gone
    signed_in = alice.login("alice", NEW_PASSWORD)
    assert signed_in.status == 200
    assert alice.refresh(signed_in.json["refresh_token"]).status == 200
    # The access token in hand stays valid until it expires (the documented window).
    assert alice.get("/auth/me").status == 200


def user_version(api: Api) -> int:
    return int(UserRecord.get(USER_PREFIX + api.user["id"], consistent_read=True).version)


def test_password_change_is_idempotent(alice: Api) -> None:
    assert change(alice).status == 204
    session = alice.login("alice", NEW_PASSWORD).json["refresh_token"]
    version = user_version(alice)
    assert change(alice).status == 204  # the same request again (its answer was lost)
    assert user_version(alice) == version  # nothing written
    assert alice.refresh(session).status == 200  # and it revoked nothing more
    assert alice.login("alice", NEW_PASSWORD).status == 200


def test_a_wrong_current_password_is_403_even_when_the_new_one_is_the_password_now(alice: Api, limits: Any) -> None:
    """Knowing the password now (sent as the new one) is no way around the current password."""
    limits(LOGIN_MAX_FAILURES=2, LOGIN_BACKOFF_BASE_SECONDS=600)
    for _ in range(2):
        problem(change(alice, current="not my password", new=PASSWORD), 403)
    problem(change(alice, current=PASSWORD, new=PASSWORD), 429)  # both counted toward the lockout


def test_the_old_password_retries_only_the_change_it_made(alice: Api) -> None:
    assert change(alice).status == 204
    problem(change(alice, current="not my password"), 403)  # the new password alone is no retry
    problem(change(alice, new="yet another passphrase"), 403)  # the old password is no longer current
    invalid_grant(alice.login("alice", "yet another passphrase"))
    assert alice.login("alice", NEW_PASSWORD).status == 200


def test_password_change_with_a_wrong_current_password_is_403(alice: Api) -> None:
    body = problem(change(alice, current="not my password"), 403)
    assert "current password" in body["detail"]
    assert alice.refresh(alice.refresh_token or "").status == 200  # nothing revoked
    assert alice.login("alice").status == 200


def test_password_change_counts_against_the_lockout(alice: Api, limits: Any) -> None:
    limits(LOGIN_MAX_FAILURES=2, LOGIN_BACKOFF_BASE_SECONDS=600)
    for _ in range(2):
        problem(change(alice, current="not my password"), 403)
    problem(change(alice), 429)  # a stolen access token guesses no faster than sign-in
    problem(alice.login("alice"), 429)


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "x" * 257},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": "", "new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "user_id": "someone"},
    ],
)
def test_password_change_validates_like_registration(alice: Api, body: dict[str, Any]) -> None:
    problem(alice.post("/auth/password", body), 422)
    assert alice.login("alice").status == 200  # unchanged


def test_password_change_needs_a_bearer_token(anon: Api, alice: Api) -> None:
    problem(anon.post("/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}), 401)
    assert alice.login("alice").status == 200


def test_racing_password_changes_lose_no_update(alice: Api) -> None:
    """Both checked the same current password; the one that writes second is refused (409)."""
    rival: list[Reply] = []
    users = runtime.settings().users_table
    with before_first("UpdateItem", lambda: rival.append(change(alice, new="the rival's passphrase")), users):
        loser = change(alice)
    assert rival[0].status == 204, rival[0].body
    problem(loser, 409)
    assert alice.login("alice", "the rival's passphrase").status == 200
    invalid_grant(alice.login("alice", NEW_PASSWORD))


# ---- the token endpoint's OAuth 2.0 errors and hostile input ----------------------------------


def test_wrong_password_is_invalid_grant(alice: Api) -> None:
    invalid_grant(alice.login("alice", "wrong password!"))


OUR_SHAPE = "01M8FP1CYTGFW5FGC7TXSJ3ETH.01M8FP1CYTGFW5FGC7TXSJ3ETH." + "A" * 43


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        (b"grant_type=refresh_token", 422, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=", 422, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=" + b"a" * 513, 422, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=" + b"a" * 100_000, 422, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=garbage", 401, "invalid_grant"),
        (b"grant_type=refresh_token&refresh_token=" + OUR_SHAPE.encode(), 401, "invalid_grant"),
        (b"grant_type=refresh_token&refresh_token=%00%ff", 400, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=%E2%80%AE..", 401, "invalid_grant"),
        (b"grant_type=refresh_token&refresh_token=a&refresh_token=b", 400, "invalid_request"),
        (b"grant_type=refresh_token&grant_type=password&refresh_token=a", 400, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=a&workspace_id=" + b"w" * 65, 422, "invalid_request"),
        (b"grant_type=authorization_code&code=x", 400, "unsupported_grant_type"),
        (b"grant_type=REFRESH_TOKEN&refresh_token=a", 400, "unsupported_grant_type"),
        (b"grant_type=password&refresh_token=a", 422, "invalid_request"),
        (b"grant_type=password&username=alice", 422, "invalid_request"),
    ],
)
def test_token_endpoint_problems_carry_oauth_errors(alice: Api, form: bytes, status: int, error: str) -> None:
    body = problem(alice.token_form(form), status)
    assert body["error"] == error
    assert alice.refresh(alice.refresh_token or "").status == 200  # none of it touched the session


def test_refresh_grant_wants_a_form(alice: Api) -> None:
    body = {"grant_type": "refresh_token", "refresh_token": alice.refresh_token}
    problem(alice.post("/auth/token", body, auth=False), 415)


def test_refresh_tokens_are_never_logged(anon: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        alice = anon.sign_up("alice")
        first = alice.refresh_token or ""
        second = alice.refresh(first).json["refresh_token"]
        alice.refresh(first)  # reuse: revoked
        alice.post("/auth/logout", {"refresh_token": second}, auth=False)
    text = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    for token in (first, second):
        assert token.split(".")[-1] not in text


def test_calls_for_sign_in_and_refresh(alice: Api, dynamodb: CallCounter) -> None:
    """The password grant adds one write (the family and its first token in one transaction),
    and reads the username's claim and the lockout state together: 4 calls, as before."""
    dynamodb.reset()
    token = alice.login("alice").json["refresh_token"]
    assert dynamodb.by_operation() == {"BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1}
    assert dynamodb.limiter_calls == ["UpdateItem"]
    dynamodb.reset()
    assert alice.refresh(token).status == 200
    assert dynamodb.by_operation() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    assert dynamodb.limiter_calls == ["UpdateItem"]  # no lockout read: that is the password grant's
