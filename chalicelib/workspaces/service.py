"""Workspaces' rules: who may see, rename, delete a workspace and manage its members.

Every rule reads the caller's membership of the workspace from DynamoDB (consistently), not
the access token's role, so a role change counts at once here. A workspace the caller is
not a member of answers 404, like any id that is not theirs. No HTTP here.
"""

from __future__ import annotations

from typing import NoReturn

from chalicelib import store as users
from chalicelib.config import Settings
from chalicelib.errors import Conflict, Forbidden, NotFound, Unauthorized
from chalicelib.ids import is_valid_id, new_id, utc_now
from chalicelib.models import Membership, Workspace
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.roles import OWNER, at_least
from chalicelib.schemas import MemberIn, MemberOut, MemberPage, PageQuery, WorkspaceOut, WorkspacePage
from chalicelib.workspaces import store

MANAGERS = ("admin", OWNER)  # the roles that rename a workspace and manage its members
PERSONAL_NAME = "Personal"  # as chalicelib.services names it at registration
NOT_FOUND = "Workspace not found."
CHANGED = "Your role in this workspace changed during the request; try again."
PERSONAL_NOT_SHARED = "A personal workspace cannot be shared: create a workspace and add members there."


def _require(workspace_id: str, what: str = "Workspace") -> None:
    """An id that is not a ULID cannot exist: 404 without asking DynamoDB."""
    if not is_valid_id(workspace_id):
        raise NotFound(f"{what} not found.")


def _out(workspace_id: str, user_id: str, workspace: Workspace | None, role: str) -> WorkspaceOut:
    """A workspace as its member sees it; a personal workspace without an item (its user
    registered before workspaces were stored) is made up from its id."""
    personal = workspace_id == user_id if workspace is None else bool(workspace.personal)
    name = PERSONAL_NAME if workspace is None else str(workspace.name)
    return WorkspaceOut(id=workspace_id, name=name, role=role, personal=personal)


def _role_of(user_id: str, workspace_id: str) -> str:
    """The caller's role (one consistent read; none for their personal workspace), or 404."""
    _require(workspace_id)
    if workspace_id == user_id:
        return OWNER
    membership = store.get_membership(workspace_id, user_id)
    if membership is None:
        raise NotFound(NOT_FOUND)
    return str(membership.role)


def _needs(role: str, needed: str, doing: str) -> None:
    if not at_least(role, needed):  # type: ignore[arg-type]
        raise Forbidden(f"Only an {needed} of this workspace can {doing}; you are {role}.")


def _recheck(user_id: str, workspace_id: str, needed: str, doing: str) -> NoReturn:
    """A write whose check of the caller's role failed: read the role again to answer 404
    (no longer a member) or 403 (role too low now), else 409 (it changed and changed back)."""
    _needs(_role_of(user_id, workspace_id), needed, doing)
    raise Conflict(CHANGED)


# ---- workspaces --------------------------------------------------------------------------


def create(user_id: str, name: str) -> WorkspaceOut:
    """A shared workspace whose creator is its one owner: the creator's username (for the
    member list), then one transaction."""
    user = users.get_user(user_id)
    if user is None:
        raise Unauthorized("The account behind this token no longer exists.")
    username = user.username or ""
    now = utc_now()
    workspace_id = new_id()
    workspace = Workspace(
        workspace_id,
        name=name,
        personal=False,
        created_by=user_id,
        created_at=now,
        updated_at=now,
        version=1,
        owners=1,
    )
    owner = Membership(workspace_id, user_id, role=OWNER, username=username, created_at=now, updated_at=now)
    store.create_workspace(workspace, owner)
    return _out(workspace_id, user_id, workspace, OWNER)


def get(user_id: str, workspace_id: str) -> WorkspaceOut:
    """Any member: membership and workspace in one read (TransactGetItems); the personal
    workspace's item alone (GetItem)."""
    _require(workspace_id)
    if workspace_id == user_id:
        return _out(workspace_id, user_id, store.get_workspace(workspace_id), OWNER)
    membership, workspace = store.get_membership_and_workspace(workspace_id, user_id)
    if membership is None or workspace is None:
        raise NotFound(NOT_FOUND)
    return _out(workspace_id, user_id, workspace, str(membership.role))


def rename(user_id: str, workspace_id: str, name: str) -> WorkspaceOut:
    """Admins and owners: the caller's role is read (the answer shows it), then checked again
    in the rename's own transaction, so a caller demoted or removed meanwhile cannot rename."""
    role = _role_of(user_id, workspace_id)
    _needs(role, "admin", "rename it")
    if workspace_id == user_id:
        workspace = store.rename_personal_workspace(user_id, name, utc_now())
        return _out(workspace_id, user_id, workspace, role)
    try:
        workspace = store.rename_workspace(workspace_id, name, utc_now(), (user_id, MANAGERS))
    except store.NotAllowed:
        _recheck(user_id, workspace_id, "admin", "rename it")
    return _out(workspace_id, user_id, workspace, role)


def delete(user_id: str, workspace_id: str) -> None:
    """Owners only; never a personal workspace. The workspace and its memberships go now; its
    contacts and notes are swept by the stream consumer (chalicelib.workspaces.purge)."""
    role = _role_of(user_id, workspace_id)
    if workspace_id == user_id:
        raise Conflict("Your personal workspace cannot be deleted.")
    _needs(role, OWNER, "delete it")
    members = _all_member_ids(workspace_id)
    store.delete_workspace(workspace_id, user_id, members)


def _all_member_ids(workspace_id: str) -> list[str]:
    """Every member's id: one Query per 100 members (bounded by the member count)."""
    ids: list[str] = []
    after: str | None = None
    while True:
        page = store.query_members(workspace_id, 100, after)
        ids += [str(m.user_id) for m in page]
        if len(page) < 100:
            return ids
        after = ids[-1]


def list_mine(settings: Settings, user_id: str, query: PageQuery) -> WorkspacePage:
    """The caller's workspaces: the personal one first (on the first page), then the others
    by id, oldest first. One Query on the by_user index and one BatchGetItem for the names.

    The personal workspace is left out of the Query's results wherever it falls (it is shown
    first instead), so two more than a page are asked for: with it among them, one more than
    the page still tells whether there is a next page.
    """
    after = (
        None if query.cursor is None else decode_cursor(settings.signing_secret, user_id, "workspaces", query.cursor)
    )
    first_page = query.cursor is None
    room = query.limit - 1 if first_page else query.limit  # the personal one takes a place
    found = store.query_user_memberships(user_id, query.limit + 2, after)
    others = [m for m in found if m.workspace_id != user_id]
    shown = others[:room]
    ids = ([user_id] if first_page else []) + [str(m.workspace_id) for m in shown]
    names = store.get_workspaces(ids)
    items = [_out(user_id, user_id, names.get(user_id), OWNER)] if first_page else []
    # A membership whose workspace was just deleted (its sweep pending) is not listed.
    items += [
        _out(m.workspace_id, user_id, names[m.workspace_id], str(m.role)) for m in shown if m.workspace_id in names
    ]
    cursor = None
    if len(others) > room and shown:
        cursor = encode_cursor(settings.signing_secret, user_id, "workspaces", shown[-1].workspace_id)
    elif len(others) > room:  # limit 1: the first page holds only the personal workspace
        cursor = encode_cursor(settings.signing_secret, user_id, "workspaces", "0" * 26)
    return WorkspacePage(items=items, next_cursor=cursor)


# ---- members ----------------------------------------------------------------------------


def _member_out(membership: Membership) -> MemberOut:
    return MemberOut(user_id=membership.user_id, username=membership.username or "", role=membership.role)


def list_members(settings: Settings, user_id: str, workspace_id: str, query: PageQuery) -> MemberPage:
    """Any member: one read of the caller's membership, one Query per page."""
    _role_of(user_id, workspace_id)
    scope = "members:" + workspace_id
    after = None if query.cursor is None else decode_cursor(settings.signing_secret, user_id, scope, query.cursor)
    found = store.query_members(workspace_id, query.limit + 1, after)
    if workspace_id == user_id and not found and after is None:
        found = [_legacy_personal_membership(user_id)]
    cursor = None
    if len(found) > query.limit:
        cursor = encode_cursor(settings.signing_secret, user_id, scope, found[query.limit - 1].user_id)
    return MemberPage(items=[_member_out(m) for m in found[: query.limit]], next_cursor=cursor)


def _legacy_personal_membership(user_id: str) -> Membership:
    """The owner membership of a personal workspace made before memberships were stored."""
    user = users.get_user(user_id)
    username = user.username if user is not None else ""
    return Membership(user_id, user_id, role=OWNER, username=username)


def _shared_workspace_role(user_id: str, workspace_id: str) -> str:
    """The caller's role in a workspace whose members can be managed (not a personal one)."""
    role = _role_of(user_id, workspace_id)
    if workspace_id == user_id:
        raise Conflict(PERSONAL_NOT_SHARED)
    return role


def add_member(user_id: str, workspace_id: str, data: MemberIn) -> MemberOut:
    """Admins add existing users; only an owner makes an owner.

    The user is looked up first (claim, then user), then one transaction checks the caller's
    role and writes the membership; only when that check fails is the caller's membership
    read, to answer 404 (not a member) or 403 (role). So an unknown user is a 404 whoever asks.
    """
    _require(workspace_id)
    if workspace_id == user_id:
        raise Conflict(PERSONAL_NOT_SHARED)
    user = users.find_user_by_username(data.username) if data.username else users.find_user_by_email(data.email)
    if user is None:
        named = f"username {data.username!r}" if data.username else f"email address {data.email!r}"
        raise NotFound(f"No user has the {named}.")
    if user.user_id == user_id:  # one transaction cannot both check and write one item
        _role_of(user_id, workspace_id)
        raise Conflict("That user is already a member of this workspace.")
    now = utc_now()
    membership = Membership(
        workspace_id, user.user_id, role=data.role, username=user.username, created_at=now, updated_at=now
    )
    allowed = (OWNER,) if data.role == OWNER else ("admin", OWNER)
    try:
        store.add_member(membership, user_id, allowed)
    except store.NotAllowed:
        role = _role_of(user_id, workspace_id)  # 404 when not (or no longer) a member
        _needs(role, "admin", "add members")
        _needs(role, OWNER, "make an owner")
        raise Conflict(CHANGED) from None  # allowed now: the role changed during the request
    return _member_out(membership)


def _caller_and_target(user_id: str, workspace_id: str, member_id: str) -> tuple[str, Membership]:
    """The caller's role and the target's membership, read together (one BatchGetItem)."""
    _require(workspace_id)
    if workspace_id == user_id:
        raise Conflict(PERSONAL_NOT_SHARED)
    _require(member_id, "Member")
    found = store.get_memberships(workspace_id, list(dict.fromkeys([user_id, member_id])))
    if user_id not in found:
        raise NotFound(NOT_FOUND)
    if member_id not in found:
        raise NotFound("Member not found.")
    return str(found[user_id].role), found[member_id]


def _caller_roles(user_id: str, member_id: str, *roles: str) -> tuple[str, tuple[str, ...]] | None:
    """What the write checks of the caller: still an owner when an owner is made, unmade or
    removed, else still admin or owner; nothing when the caller changes their own membership
    (its own condition, the role still being what was read, covers it)."""
    if member_id == user_id:
        return None
    return user_id, (OWNER,) if OWNER in roles else MANAGERS


def change_member_role(user_id: str, workspace_id: str, member_id: str, new_role: str) -> MemberOut:
    """Admins change roles; only an owner makes or unmakes an owner; the last owner stays."""
    role, target = _caller_and_target(user_id, workspace_id, member_id)
    _needs(role, "admin", "change roles")
    old_role = str(target.role)
    if OWNER in (old_role, new_role):
        _needs(role, OWNER, "make or unmake an owner")
    if old_role != new_role:
        caller = _caller_roles(user_id, member_id, old_role, new_role)
        try:
            store.change_role(workspace_id, member_id, old_role, new_role, utc_now(), caller)
        except store.NotAllowed:
            needed = OWNER if OWNER in (old_role, new_role) else "admin"
            _recheck(user_id, workspace_id, needed, "make or unmake an owner" if needed == OWNER else "change roles")
    target.role = new_role
    return _member_out(target)


def remove_member(user_id: str, workspace_id: str, member_id: str) -> None:
    """Admins remove members (only an owner removes an owner); anyone may leave. The last
    owner can do neither."""
    role, target = _caller_and_target(user_id, workspace_id, member_id)
    old_role = str(target.role)
    if member_id != user_id:
        _needs(role, "admin", "remove members")
        if old_role == OWNER:
            _needs(role, OWNER, "remove an owner")
    try:
        store.remove_member(workspace_id, member_id, old_role, _caller_roles(user_id, member_id, old_role))
    except store.NotAllowed:
        needed = OWNER if old_role == OWNER else "admin"
        _recheck(user_id, workspace_id, needed, "remove an owner" if needed == OWNER else "remove members")
