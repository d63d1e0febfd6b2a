"""Persistence for workspaces and memberships: every DynamoDB call this capability makes.

Each function is one request to DynamoDB unless its docstring says otherwise. Invariants are
kept by DynamoDB itself: a membership and the workspace's owner count change in one
transaction, each write conditional on what the rule needs (never read-then-write).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.errors import Conflict, NotFound
from chalicelib.ids import new_id
from chalicelib.models import Contact, ContactEmail, Membership, Note, WebhookEndpoint, Workspace
from chalicelib.outage import unavailable
from chalicelib.roles import OWNER
from chalicelib.store import UnprocessedWrites, batch_write, dynamodb_errors, transact

LAST_OWNER = "A workspace needs an owner: make another member owner first."
CHANGED = "That membership changed at the same moment; read it again and retry."
TRANSACTION_ITEMS = 100  # DynamoDB's limit on one TransactWriteItems
BATCH_WRITE_ITEMS = 25  # and on one BatchWriteItem


def _token() -> str:
    """A client request token per transaction (botocore's retries of that call stay idempotent)."""
    return new_id()


# ---- reads ----------------------------------------------------------------------------------


def get_membership(workspace_id: str, user_id: str) -> Membership | None:
    """One consistent GetItem: a removal or a role change counts at once."""
    with dynamodb_errors():
        try:
            return Membership.get(workspace_id, user_id, consistent_read=True)
        except Membership.DoesNotExist:
            return None


def get_memberships(workspace_id: str, user_ids: list[str]) -> dict[str, Membership]:
    """Several users' memberships of one workspace in one BatchGetItem (consistent reads)."""
    with dynamodb_errors():
        found = Membership.batch_get([(workspace_id, user_id) for user_id in user_ids], consistent_read=True)
        return {membership.user_id: membership for membership in found}


def get_workspace(workspace_id: str) -> Workspace | None:
    with dynamodb_errors():
        try:
            return Workspace.get(workspace_id, consistent_read=True)
        except Workspace.DoesNotExist:
            return None


def get_membership_and_workspace(workspace_id: str, user_id: str) -> tuple[Membership | None, Workspace | None]:
    """The caller's membership and the workspace, read together in one TransactGetItems."""
    connection = Workspace._get_connection().connection
    with dynamodb_errors(), TransactGet(connection=connection) as txn:
        membership_future = txn.get(Membership, workspace_id, user_id)
        workspace_future = txn.get(Workspace, workspace_id)
    membership: Membership | None = None
    workspace: Workspace | None = None
    with contextlib.suppress(Membership.DoesNotExist):
        membership = membership_future.get()
    with contextlib.suppress(Workspace.DoesNotExist):
        workspace = workspace_future.get()
    return membership, workspace


def get_workspaces(workspace_ids: list[str]) -> dict[str, Workspace]:
    """Workspaces by id in one BatchGetItem (a page lists at most 100, BatchGetItem's limit);
    PynamoDB asks again for keys DynamoDB leaves unprocessed."""
    if not workspace_ids:
        return {}
    with dynamodb_errors():
        return {workspace.workspace_id: workspace for workspace in Workspace.batch_get(workspace_ids)}


def query_user_memberships(user_id: str, limit: int, after_id: str | None) -> list[Membership]:
    """One Query on the by_user index: a user's memberships in workspace id order (oldest first).

    A GSI reads eventually consistent: a membership made a moment ago may be missing from it.
    """
    start = None
    if after_id:
        start = {"user_id": {"S": user_id}, "workspace_id": {"S": after_id}}
    with dynamodb_errors():
        return list(Membership.by_user.query(user_id, limit=limit, page_size=limit, last_evaluated_key=start))


def query_members(workspace_id: str, limit: int, after_id: str | None) -> list[Membership]:
    """One Query: a workspace's members in user id order."""
    start = {"workspace_id": {"S": workspace_id}, "user_id": {"S": after_id}} if after_id else None
    with dynamodb_errors():
        return list(
            Membership.query(workspace_id, consistent_read=True, limit=limit, page_size=limit, last_evaluated_key=start)
        )


# ---- workspaces --------------------------------------------------------------------------


Caller = tuple[str, tuple[str, ...]]  # a managing member's id and the roles that allow the write


class NotAllowed(Exception):
    """The caller's membership did not allow the write when it was made (gone, or its role)."""


def _caller_check(txn: TransactWrite, workspace_id: str, caller_id: str, roles: tuple[str, ...]) -> None:
    """The caller's membership still holds one of `roles` when the transaction commits: a
    caller demoted or removed after the request read their role cannot write with it."""
    txn.condition_check(Membership, workspace_id, caller_id, condition=Membership.role.is_in(*roles))


def create_workspace(workspace: Workspace, owner: Membership) -> None:
    """One transaction: the workspace (one owner) and its creator's owner membership."""

    def write(txn: TransactWrite) -> None:
        txn.save(workspace, condition=Workspace.workspace_id.does_not_exist())
        txn.save(owner, condition=Membership.user_id.does_not_exist())

    if transact(Workspace, workspace.workspace_id, write):
        raise Conflict("That workspace already exists.")


def rename_workspace(workspace_id: str, name: str, now: str, caller: Caller) -> Workspace:
    """One transaction: the caller still holds one of the roles `caller` names (NotAllowed if
    not), and the workspace, which must still exist (NotFound), gets its new name."""
    workspace = Workspace(workspace_id)
    actions: list[Action] = [Workspace.name.set(name), Workspace.updated_at.set(now), Workspace.version.add(1)]

    def write(txn: TransactWrite) -> None:
        _caller_check(txn, workspace_id, *caller)
        txn.update(workspace, actions=actions, condition=Workspace.workspace_id.exists())

    failed = transact(Workspace, _token(), write)
    if 0 in failed:
        raise NotAllowed
    if failed:
        raise NotFound("Workspace not found.")
    # A transaction returns no attributes: what the answer shows is what was written.
    return Workspace(workspace_id, name=name, personal=False, updated_at=now)


def rename_personal_workspace(user_id: str, name: str, now: str) -> Workspace:
    """One UpdateItem that also creates the item of a personal workspace made before
    workspaces were stored (if_not_exists keeps what an existing item says)."""
    workspace = Workspace(user_id)
    actions: list[Action] = [
        Workspace.name.set(name),
        Workspace.personal.set(True),
        Workspace.created_by.set(Workspace.created_by | user_id),
        Workspace.created_at.set(Workspace.created_at | now),
        Workspace.updated_at.set(now),
        Workspace.version.set((Workspace.version | 0) + 1),
    ]
    with dynamodb_errors():
        workspace.update(actions=actions)
    return workspace


def delete_workspace(workspace_id: str, owner_id: str, member_ids: list[str]) -> None:
    """Delete the workspace and its memberships: one transaction for the workspace, the
    deleting owner and up to 98 more members (one call for nearly every workspace), then
    BatchWriteItems of 25 for any others. The workspace item goes in the transaction, so
    its deletion is the commit point; should the batches be interrupted, the stream
    consumer (chalicelib.workspaces.purge) sweeps the memberships left, with the data.
    """
    others = [user_id for user_id in member_ids if user_id != owner_id]
    first, rest = others[: TRANSACTION_ITEMS - 2], others[TRANSACTION_ITEMS - 2 :]

    def write(txn: TransactWrite) -> None:
        txn.delete(Workspace(workspace_id), condition=Workspace.personal == False)  # noqa: E712 (an expression)
        # Still an owner at the moment of deletion (a concurrent demotion fails it).
        txn.delete(Membership(workspace_id, owner_id), condition=Membership.role == OWNER)
        for user_id in first:
            txn.delete(Membership(workspace_id, user_id))

    failed = transact(Workspace, _token(), write)
    if 0 in failed:
        raise NotFound("Workspace not found.")
    if failed:
        raise Conflict("Only an owner can delete a workspace, and your role changed meanwhile.")
    if rest:
        delete_items(Membership(workspace_id, user_id) for user_id in rest)


# ---- members ----------------------------------------------------------------------------


def add_member(membership: Membership, caller_id: str, caller_roles: tuple[str, ...]) -> None:
    """One transaction: the caller still holds one of `caller_roles` there, the membership is
    new, and the workspace still exists and is not personal (its owner count grows when the
    new member is an owner). The caller's role is checked in the write itself, so no read of
    it comes first; NotAllowed tells the caller to find out why (the rare path)."""
    workspace_condition = Workspace.workspace_id.exists() & (Workspace.personal == False)  # noqa: E712
    owner = membership.role == OWNER

    def write(txn: TransactWrite) -> None:
        _caller_check(txn, membership.workspace_id, caller_id, caller_roles)
        if owner:
            workspace = Workspace(membership.workspace_id)
            txn.update(workspace, actions=[Workspace.owners.add(1)], condition=workspace_condition)
        else:
            txn.condition_check(Workspace, membership.workspace_id, condition=workspace_condition)
        txn.save(membership, condition=Membership.user_id.does_not_exist())

    failed = transact(Membership, _token(), write)
    # Sent in this order: condition checks (the caller; the workspace unless an owner is
    # added), puts (the membership), updates (the workspace when an owner is added).
    membership_at = 1 if owner else 2
    if 0 in failed:
        raise NotAllowed
    if membership_at in failed:
        raise Conflict("That user is already a member of this workspace.")
    if failed:
        raise NotFound("Workspace not found.")


def _owner_change(txn: TransactWrite, workspace_id: str, old: str, new: str | None) -> None:
    """Keep the workspace's owner count: one fewer (never below one), or one more."""
    workspace = Workspace(workspace_id)
    if old == OWNER and new != OWNER:
        txn.update(workspace, actions=[Workspace.owners.add(-1)], condition=Workspace.owners >= 2)
    elif new == OWNER and old != OWNER:
        txn.update(workspace, actions=[Workspace.owners.add(1)], condition=Workspace.workspace_id.exists())


def change_role(workspace_id: str, user_id: str, old: str, new: str, now: str, caller: Caller | None) -> None:
    """One transaction: the caller (unless changing their own role) still holds an allowed
    role, the role (only if still `old`) and, if an owner is made or unmade, the owner count
    (which cannot fall below one: the last owner stays)."""
    membership = Membership(workspace_id, user_id)

    def write(txn: TransactWrite) -> None:
        if caller is not None:
            _caller_check(txn, workspace_id, *caller)
        actions: list[Action] = [Membership.role.set(new), Membership.updated_at.set(now)]
        txn.update(membership, actions=actions, condition=Membership.role == old)
        _owner_change(txn, workspace_id, old, new)

    _raise_for(transact(Membership, _token(), write), caller is not None, old)


def remove_member(workspace_id: str, user_id: str, old: str, caller: Caller | None) -> None:
    """One transaction: the caller (unless leaving) still holds an allowed role, the
    membership (only if still `old`) and, for an owner, the owner count, which cannot fall
    below one."""

    def write(txn: TransactWrite) -> None:
        if caller is not None:
            _caller_check(txn, workspace_id, *caller)
        txn.delete(Membership(workspace_id, user_id), condition=Membership.role == old)
        _owner_change(txn, workspace_id, old, None)

    _raise_for(transact(Membership, _token(), write), caller is not None, old)


def _raise_for(failed: list[int], checked_caller: bool, old: str) -> None:
    """Why a member change was cancelled. Sent in this order: the caller's check (if any),
    the membership, the workspace's owner count (if an owner is made or unmade: its last
    owner, or a workspace gone)."""
    if not failed:
        return
    first = 1 if checked_caller else 0
    if checked_caller and 0 in failed:
        raise NotAllowed
    if first in failed:
        raise Conflict(CHANGED)
    raise Conflict(LAST_OWNER) if old == OWNER else NotFound("Workspace not found.")


# ---- the deletion sweep (stream consumer) ----------------------------------------------------


def delete_items(items: Iterable[Model]) -> None:
    """BatchWriteItem deletes, 25 per call, unprocessed ones sent again with backoff
    (chalicelib.store.batch_write); raises once its resends are spent, so the caller can
    report a failure and the stream retries the record."""
    pending = list(items)
    if not pending:
        return
    model = type(pending[0])
    hash_name = model._hash_key_attribute().attr_name
    range_name = model._range_key_attribute().attr_name
    requests = [
        {"DeleteRequest": {"Key": {name: {"S": str(getattr(item, name))} for name in (hash_name, range_name)}}}
        for item in pending
    ]
    try:
        with dynamodb_errors():
            batch_write(model.Meta.table_name, requests)
    except UnprocessedWrites as exc:  # throttled throughout: the store is busy (503, or a retried record)
        raise unavailable("DynamoDB", "BatchWriteItem left items unprocessed", "is busy", 1) from exc


def purge_partition(
    model: type[Contact] | type[ContactEmail] | type[Note] | type[Membership] | type[WebhookEndpoint], owner_id: str
) -> int:
    """Delete every item of one partition (a workspace's contacts, notes or memberships):
    a keys-only Query per page (1 MB) and BatchWriteItem deletes. Idempotent. Returns how
    many it deleted."""
    hash_name = model._hash_key_attribute().attr_name
    range_name = model._range_key_attribute().attr_name
    deleted = 0
    with dynamodb_errors():
        keys = model.query(owner_id, consistent_read=True, attributes_to_get=[hash_name, range_name])
        page: list[Model] = []
        for item in keys:
            page.append(item)
            if len(page) == BATCH_WRITE_ITEMS:
                delete_items(page)
                deleted, page = deleted + len(page), []
        delete_items(page)
        deleted += len(page)
    return deleted
