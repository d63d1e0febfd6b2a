"""The JWT authorizer: API Gateway's TOKEN authorizer Lambda, and the local gateway's.

A blueprint of its own so that the authorizer Lambda (handler `chalicelib.api.gate.jwt_auth`)
imports only what verifying a token needs, not the API's routes.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import AuthRequest, AuthResponse

from chalicelib.auth import InvalidToken, verify_token
from chalicelib.runtime import api_settings
from chalicelib.web import unauthorized_error

gate = Blueprint(__name__)


class UsagePlanAuthResponse(AuthResponse):
    """Chalice's AuthResponse plus `usageIdentifierKey`, which names the API key (and so the
    usage plan) API Gateway meters the request against when the API key source is AUTHORIZER."""

    def __init__(self, *args: Any, usage_identifier_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_identifier_key = usage_identifier_key

    def to_dict(self, request: AuthRequest) -> dict[str, Any]:
        result = super().to_dict(request)
        if self.usage_identifier_key:
            result["usageIdentifierKey"] = self.usage_identifier_key
        return result


@gate.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    """Verify the bearer token alone (no database call); allow every route (cached per token)."""
    current = api_settings()
    try:
        principal = verify_token(current, auth_request.token or "")
    except InvalidToken:
        raise unauthorized_error() from None
    context = {
        "user_id": principal.user_id,
        "owner_id": principal.owner_id,
        "tier": principal.tier,
        "role": principal.role,
        # API Gateway caches this answer per token for ttl_seconds; the API checks exp again
        # so that a token expiring inside that window stops working on time.
        "exp": str(principal.expires_at),
    }
    return UsagePlanAuthResponse(
        routes=["*"],
        principal_id=principal.user_id,
        context=context,
        usage_identifier_key=current.usage_plan_keys.get(principal.tier),
    )
