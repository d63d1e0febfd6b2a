"""Roles in a workspace, each including the ones below it."""

from __future__ import annotations

from typing import Literal

Role = Literal["viewer", "editor", "admin", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin", "owner")  # lowest first
OWNER: Role = "owner"


def at_least(role: str, needed: Role) -> bool:
    """Whether `role` includes `needed` (an unknown role includes nothing)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)
