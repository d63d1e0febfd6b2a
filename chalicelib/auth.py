"""Password hashing (argon2id via libpass) and access tokens (JWT via PyJWT)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.config import Settings
from chalicelib.roles import OWNER, ROLES

ALGORITHMS = ["HS256"]  # pinned: a token naming any other algorithm is refused
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret); RFC 9068 access-token media type, checked on every token
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"]
CLOCK_SKEW_SECONDS = 5


@lru_cache(maxsize=4)
def _password_context(memory_kib: int, rounds: int) -> Any:
    from passlib.context import CryptContext  # on first use: not every function hashes

    # argon2id, one lane; the cost comes from the settings (OWASP's minimum unless the local
    # stage says less: chalicelib.config). Verifying reads the cost from the stored hash.
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=memory_kib,
        argon2__rounds=rounds,
        argon2__parallelism=1,
    )


def _cost() -> tuple[int, int]:
    from chalicelib import runtime  # settings are read on first use, never at import

    current = runtime.settings()
    return current.password_hash_memory_kib, current.password_hash_rounds


def hash_password(password: str) -> str:
    return str(_password_context(*_cost()).hash(password))


@lru_cache(maxsize=4)
def _dummy_hash(memory_kib: int, rounds: int) -> str:
    return str(_password_context(memory_kib, rounds).hash(secrets.token_urlsafe(16)))


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password; with no hash (unknown user) spend the same time and fail."""
    cost = _cost()
    context = _password_context(*cost)
    if password_hash is None:
        context.verify(password, _dummy_hash(*cost))
        return False
    try:
        return bool(context.verify(password, password_hash))
    except ValueError:  # a corrupt stored hash must not become a 500 or a login
        return False


DEFAULT_TIER = "default"
_TIER = re.compile(r"^[a-z0-9-]{1,32}$")


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: str
    owner_id: str  # the workspace the token acts in
    tier: str = DEFAULT_TIER
    expires_at: int = 0
    role: str = OWNER  # the user's role in that workspace when the token was issued


def issue_token(
    settings: Settings, user_id: str, tier: str = DEFAULT_TIER, workspace_id: str | None = None, role: str = OWNER
) -> tuple[str, int]:
    """A signed access token for the user acting in a workspace (default: their personal one)
    with a role, and its usage-plan tier; and its lifetime in seconds."""
    now = int(time.time())
    ttl = settings.access_token_minutes * 60
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "tier": tier,
        "wid": workspace_id or user_id,
        "role": role,
    }
    import jwt  # on first use (PyJWT pulls in cryptography where installed)

    token = jwt.encode(claims, settings.signing_secret, algorithm="HS256", headers={"typ": TOKEN_TYPE})
    return token, ttl


class InvalidToken(Exception):
    """The bearer token is missing, malformed, forged, expired or not meant for us."""


def _bearer_value(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidToken("expected 'Bearer <token>'")
    return token


def verify_token(settings: Settings, authorization: str) -> Principal:
    """Verify an Authorization header value; raise InvalidToken for anything but a valid token."""
    import jwt

    token = _bearer_value(authorization)
    try:
        decoded = jwt.decode_complete(  # header and claims from one parse
            token,
            settings.signing_secret,
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if decoded["header"].get("typ") != TOKEN_TYPE:
        raise InvalidToken("wrong token type")
    claims: dict[str, Any] = decoded["payload"]
    subject, tier = claims["sub"], claims.get("tier", DEFAULT_TIER)
    workspace, role = claims.get("wid", subject), claims.get("role", OWNER)  # tokens made before workspaces
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("bad subject")
    if not isinstance(tier, str) or not _TIER.match(tier):
        raise InvalidToken("bad tier")
    if not isinstance(workspace, str) or not workspace or role not in ROLES:
        raise InvalidToken("bad workspace or role")
    return Principal(subject, workspace, tier, int(claims["exp"]), role)
