"""Persistence for refresh-token sessions: every DynamoDB call they make.

Each function is one request to DynamoDB. Nothing here is read and then written: every
change is conditional on the state it depends on, so racing requests cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.ids import new_id
from chalicelib.models import (
    CURRENT,
    FAMILY_PREFIX,
    ROTATED,
    TOKEN_PREFIX,
    USER_PREFIX,
    SessionRecord,
    UserRecord,
    dynamodb_client,
)
from chalicelib.outage import unavailable
from chalicelib.store import condition_failed, dynamodb_errors, transact


def family_key(family_id: str) -> str:
    return FAMILY_PREFIX + family_id


def token_key(token_hash: str) -> str:
    return TOKEN_PREFIX + token_hash


def start_family(family: SessionRecord, token: SessionRecord) -> None:
    """One transaction: a new family and its first token (both new: ids are random)."""

    def write(txn: TransactWrite) -> None:
        for item in (family, token):
            txn.save(item, condition=SessionRecord.pk.does_not_exist())

    if transact(SessionRecord, new_id(), write):
        raise unavailable("DynamoDB", "a new session's key was taken", "is busy", 1)  # 2^-80: never


@dataclass(frozen=True)
class Seen:
    """What a refresh reads: the presented token, its family and the user (each None if absent)."""

    token: SessionRecord | None
    family: SessionRecord | None
    user: UserRecord | None


def read_for_refresh(user_id: str, family_id: str, token_hash: str) -> Seen:
    """One BatchGetItem over two tables, strongly consistent: token, family and user together."""
    sessions, users = SessionRecord.Meta.table_name, UserRecord.Meta.table_name
    request = {
        sessions: {
            "Keys": [{"pk": {"S": token_key(token_hash)}}, {"pk": {"S": family_key(family_id)}}],
            "ConsistentRead": True,
        },
        users: {"Keys": [{"pk": {"S": USER_PREFIX + user_id}}], "ConsistentRead": True},
    }
    with dynamodb_errors():
        out = dynamodb_client().batch_get_item(RequestItems=request)
    if out.get("UnprocessedKeys"):  # only when DynamoDB throttles: the client may retry
        raise unavailable("DynamoDB", "BatchGetItem left keys unprocessed", "is busy", 1)
    found: dict[str, dict[str, Any]] = {
        item["pk"]["S"]: item for table in (sessions, users) for item in out["Responses"].get(table, [])
    }
    token = found.get(token_key(token_hash))
    family = found.get(family_key(family_id))
    user = found.get(USER_PREFIX + user_id)
    return Seen(
        SessionRecord.from_raw_data(token) if token else None,
        SessionRecord.from_raw_data(family) if family else None,
        UserRecord.from_raw_data(user) if user else None,
    )


# Where each item of `rotate`'s transaction is: PynamoDB sends condition checks, then puts,
# then updates, each in the order given.
_USER_CHECK, _NEW_TOKEN, _OLD_TOKEN, _FAMILY = 0, 1, 2, 3


@dataclass(frozen=True)
class Rotation:
    """One refresh's writes: the token it retires, the one it issues, the family's new state."""

    user_id: str
    family_id: str
    old_hash: str
    new_hash: str
    workspace_id: str
    now: str
    expires_at: datetime
    sessions_valid_after: str | None  # as read: a password change in between voids the refresh


def rotate(rotation: Rotation) -> str | None:
    """One transaction; None when it committed, else why not: "token" (the presented token is
    no longer current: used twice), "family" (revoked or gone) or "user" (gone, or changed
    password since it was read)."""
    r = rotation
    family = SessionRecord(family_key(r.family_id))
    retired = SessionRecord(token_key(r.old_hash))
    issued = SessionRecord(token_key(r.new_hash), family_id=r.family_id, state=CURRENT, expires_at=r.expires_at)
    cutoff = UserRecord.sessions_valid_after
    unchanged = cutoff.does_not_exist() if r.sessions_valid_after is None else cutoff == r.sessions_valid_after

    def write(txn: TransactWrite) -> None:
        txn.condition_check(UserRecord, USER_PREFIX + r.user_id, condition=UserRecord.pk.exists() & unchanged)
        txn.save(issued, condition=SessionRecord.pk.does_not_exist())
        # The retired token is kept (rotated) as long as a live family could still see it again.
        txn.update(
            retired,
            actions=[SessionRecord.state.set(ROTATED), SessionRecord.expires_at.set(r.expires_at)],
            condition=SessionRecord.state == CURRENT,
        )
        txn.update(
            family,
            actions=[
                SessionRecord.workspace_id.set(r.workspace_id),
                SessionRecord.updated_at.set(r.now),
                SessionRecord.expires_at.set(r.expires_at),
            ],
            condition=SessionRecord.pk.exists() & SessionRecord.revoked.does_not_exist(),
        )

    failed = transact(SessionRecord, new_id(), write)
    if not failed:
        return None
    if _OLD_TOKEN in failed:
        return "token"
    return "family" if _FAMILY in failed else "user"


def revoke_family(family_id: str, now: str) -> None:
    """One UpdateItem marking the family revoked; a family already gone stays gone."""
    try:
        with dynamodb_errors():
            SessionRecord(family_key(family_id)).update(
                actions=[SessionRecord.revoked.set(True), SessionRecord.updated_at.set(now)],
                condition=SessionRecord.pk.exists(),
            )
    except PynamoDBException as exc:
        if not condition_failed(exc):
            raise


def revoke_family_of_token(family_id: str, token_hash: str, now: str) -> bool:
    """One transaction: revoke the family only if this token was issued in it (whatever its
    state), so a token is its own proof. False when it was not (unknown token, family gone)."""

    def write(txn: TransactWrite) -> None:
        txn.condition_check(SessionRecord, token_key(token_hash), condition=SessionRecord.family_id == family_id)
        txn.update(
            SessionRecord(family_key(family_id)),
            actions=[SessionRecord.revoked.set(True), SessionRecord.updated_at.set(now)],
            condition=SessionRecord.pk.exists(),
        )

    return not transact(SessionRecord, new_id(), write)


def change_password(user_id: str, version: int, password_hash: str, previous_hash: str, now: str) -> bool:
    """One UpdateItem on the user at the version read: the new hash (the one it replaces kept
    as the previous), and every family started until now void. False (nothing written) when
    the user changed meanwhile or is gone."""
    user = UserRecord(USER_PREFIX + user_id)
    actions: list[Action] = [
        UserRecord.password_hash.set(password_hash),
        UserRecord.previous_password_hash.set(previous_hash),
        UserRecord.sessions_valid_after.set(now),
        UserRecord.updated_at.set(now),
        UserRecord.version.add(1),
    ]
    try:
        with dynamodb_errors():
            user.update(actions=actions, condition=UserRecord.version == version)
    except PynamoDBException as exc:
        if condition_failed(exc):
            return False
        raise
    return True
