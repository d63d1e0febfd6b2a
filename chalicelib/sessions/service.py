"""Rules for sessions: refresh tokens rotated within a family, reuse detection (RFC 9700
§4.14.2), sign-out and password change. No HTTP here, and no DynamoDB but through the store.

A refresh token reads `<user id>.<family id>.<secret>`: the ids let one BatchGetItem fetch
the token, its family and the user together; the secret (256 random bits) is what makes it
a credential. Clients treat it as opaque. Only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chalicelib import auth, ratelimit
from chalicelib import store as users
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, InvalidGrant, Unauthorized
from chalicelib.ids import new_id, utc_now
from chalicelib.models import CURRENT, SessionRecord, UserRecord
from chalicelib.schemas import PasswordChangeIn, TokenOut
from chalicelib.sessions import store
from chalicelib.workspaces.access import role_in

SECRET_BYTES = 32  # 256 bits
_ULID = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
TOKEN_PATTERN = re.compile(rf"^({_ULID})\.({_ULID})\.([A-Za-z0-9_-]{{43}})$")

NOT_VALID = "The refresh token is invalid, expired or revoked; sign in again."
REUSED = "The refresh token was already used: this sign-in is revoked everywhere; sign in again."


@dataclass(frozen=True)
class Presented:
    """A refresh token of our shape (not yet known to be real)."""

    user_id: str
    family_id: str
    token_hash: str


def _hash(token: str) -> str:
    # A fast hash is enough, unlike for passwords: the token carries 256 random bits, so its
    # hash cannot be inverted by guessing, and a slow hash would only slow every refresh. It
    # covers the whole text, so the ids in a token cannot be swapped for others.
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(user_id: str, family_id: str) -> tuple[str, str]:
    token = f"{user_id}.{family_id}.{secrets.token_urlsafe(SECRET_BYTES)}"
    return token, _hash(token)


def _presented(token: str) -> Presented | None:
    """The parts of a token of our shape; None for anything else (no read needed to refuse it)."""
    match = TOKEN_PATTERN.match(token)
    return None if match is None else Presented(match[1], match[2], _hash(token))


def _expiry(settings: Settings) -> datetime:
    return datetime.now(UTC) + timedelta(days=settings.refresh_token_days)


def open_family(settings: Settings, user_id: str, workspace_id: str) -> str:
    """Start a token family for a sign-in (one transaction); return its first refresh token."""
    family_id = new_id()
    token, token_hash = _new_token(user_id, family_id)
    now, expires = utc_now(), _expiry(settings)
    family = SessionRecord(
        store.family_key(family_id),
        user_id=user_id,
        workspace_id=workspace_id,
        created_at=now,
        updated_at=now,
        expires_at=expires,
    )
    first = SessionRecord(store.token_key(token_hash), family_id=family_id, state=CURRENT, expires_at=expires)
    store.start_family(family, first)
    return token


def _lapsed(settings: Settings, family: SessionRecord) -> bool:
    """Unused for REFRESH_TOKEN_DAYS. Checked on use: DynamoDB's TTL deletes an expired item
    only eventually (typically within days), and a lowered setting counts at once."""
    now = datetime.now(UTC)
    last_use = datetime.fromisoformat(family.updated_at or "1970-01-01T00:00:00Z")
    return (
        family.expires_at is None
        or family.expires_at <= now
        or last_use + timedelta(days=settings.refresh_token_days) <= now
    )


def _sessions_void(user: UserRecord, family: SessionRecord) -> bool:
    """The family started before (or as) the user's password last changed."""
    cutoff = user.sessions_valid_after
    return cutoff is not None and (family.created_at or "") <= cutoff


def _live(
    settings: Settings, seen: store.Seen, presented: Presented
) -> tuple[SessionRecord, SessionRecord, UserRecord]:
    """The token, family and user of a refresh, or InvalidGrant (reuse is dealt with apart)."""
    token, family, user = seen.token, seen.family, seen.user
    if token is None or family is None or token.family_id != presented.family_id:
        raise InvalidGrant(NOT_VALID)
    if family.revoked or family.user_id != presented.user_id or _lapsed(settings, family):
        raise InvalidGrant(NOT_VALID)
    if user is None or _sessions_void(user, family):
        raise InvalidGrant(NOT_VALID)
    return token, family, user


def _reused(family_id: str) -> InvalidGrant:
    """A token presented twice: either its holder or a thief has it, so neither keeps the family."""
    store.revoke_family(family_id, utc_now())
    return InvalidGrant(REUSED)


def refresh(settings: Settings, token: str, workspace_id: str | None) -> TokenOut:
    """Rotate a refresh token: a new access token (membership and role read again) and a new
    refresh token; the presented one is retired. Calls: one BatchGetItem, one GetItem of the
    membership unless the workspace is personal, one TransactWriteItems."""
    presented = _presented(token)
    if presented is None:
        raise InvalidGrant(NOT_VALID)
    seen = store.read_for_refresh(presented.user_id, presented.family_id, presented.token_hash)
    current, family, user = _live(settings, seen, presented)
    if current.state != CURRENT:
        raise _reused(presented.family_id)
    workspace = workspace_id or family.workspace_id or user.user_id
    role = role_in(user.user_id, workspace)
    if role is None:  # the same answer whether the workspace exists or not
        raise Forbidden(
            "You are not a member of that workspace; refresh into another one (workspace_id) or sign in again.",
            extra={"error": "invalid_scope"},
        )
    new_token, new_hash = _new_token(user.user_id, presented.family_id)
    rotation = store.Rotation(
        user.user_id,
        presented.family_id,
        presented.token_hash,
        new_hash,
        workspace,
        utc_now(),
        _expiry(settings),
        user.sessions_valid_after,
    )
    failed = store.rotate(rotation)
    if failed == "token":  # a concurrent refresh with the same token got there first
        raise _reused(presented.family_id)
    if failed:
        raise InvalidGrant(NOT_VALID)
    access, ttl = auth.issue_token(settings, user.user_id, user.tier or auth.DEFAULT_TIER, workspace, role)
    return TokenOut(access_token=access, expires_in=ttl, refresh_token=new_token)


def sign_out(token: str) -> None:
    """Revoke the family of a refresh token; a token that is not ours (or already revoked, or
    expired) is no error: there is then nothing left to sign out. At most one transaction."""
    presented = _presented(token)
    if presented is not None:
        store.revoke_family_of_token(presented.family_id, presented.token_hash, utc_now())


def change_password(settings: Settings, user_id: str, data: PasswordChangeIn) -> None:
    """Set a new password and void every refresh family of the user (one conditional write).

    The current password is checked under the sign-in lockout, so a stolen access token is no
    faster way to guess it than the token endpoint. Repeating a change that succeeded (its
    answer was lost) is a 204 again without writing: its current password is the one that
    change replaced (kept as the previous hash) and its new one is the password now. Anything
    else with a current password that is not the password now is 403.
    """
    user = users.get_user(user_id)
    if user is None:
        raise Unauthorized("The account behind this token no longer exists.")
    username = user.username or user_id
    seen = ratelimit.ensure_login_allowed(username, settings)
    if auth.verify_password(data.current_password, user.password_hash):
        ratelimit.record_login_success(username, seen)
        _store_password(user, data.new_password)
    elif _is_retry_of_last_change(user, data):
        ratelimit.record_login_success(username, seen)  # already done: idempotent
    else:
        ratelimit.record_login_failure(username, seen, settings)
        raise Forbidden("The current password is not correct.")


def _is_retry_of_last_change(user: UserRecord, data: PasswordChangeIn) -> bool:
    """The last change again: from the password it replaced to the password now."""
    previous = user.previous_password_hash
    return (
        previous is not None
        and auth.verify_password(data.current_password, previous)
        and auth.verify_password(data.new_password, user.password_hash)
    )


def _store_password(user: UserRecord, new_password: str) -> None:
    new_hash = auth.hash_password(new_password)
    if not store.change_password(user.user_id, int(user.version), new_hash, str(user.password_hash), utc_now()):
        raise Conflict("The account changed while the password was being changed; try again.")
