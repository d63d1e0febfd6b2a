"""The role a user holds in a workspace: what token issuance (sign-in, refresh) asks."""

from __future__ import annotations

from chalicelib.models import Membership
from chalicelib.roles import OWNER
from chalicelib.store import dynamodb_errors


def role_in(user_id: str, workspace_id: str) -> str | None:
    """The user's role in the workspace, or None when not a member (or no such workspace).

    A user's personal workspace has the user's id and the user owns it: no read. Any other
    is one strongly consistent GetItem, so a removal or a role change counts at once.
    """
    if workspace_id == user_id:
        return OWNER
    with dynamodb_errors():
        try:
            membership = Membership.get(workspace_id, user_id, consistent_read=True)
        except Membership.DoesNotExist:
            return None
    return str(membership.role)
