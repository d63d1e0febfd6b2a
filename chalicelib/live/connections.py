"""The live-updates connections table: every DynamoDB call chalicelib.live makes.

A connection is two items (models.LiveConnection), written and deleted together in one
transaction: the workspace's entry (pk "W#<workspace id>", sk the connection id), which the
fan-out reads with one Query per workspace, and the connection's pointer (pk "C#<connection
id>"), which names the workspace for $disconnect. Both carry the same TTL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.transactions import TransactWrite

from chalicelib.ids import utc_now
from chalicelib.models import LiveConnection
from chalicelib.store import dynamodb_errors, get_or_none, transact

WORKSPACE_PREFIX = "W#"
CONNECTION_PREFIX = "C#"
POINTER_SORT_KEY = "C#"


@dataclass(frozen=True)
class Connection:
    """An open connection of a workspace, as the fan-out sees it."""

    connection_id: str
    user_id: str
    expires_at: int  # epoch seconds

    def expired(self, now: float) -> bool:
        return self.expires_at <= now


def _entry(workspace_id: str, connection_id: str) -> tuple[str, str]:
    return WORKSPACE_PREFIX + workspace_id, connection_id


def _pointer(connection_id: str) -> tuple[str, str]:
    return CONNECTION_PREFIX + connection_id, POINTER_SORT_KEY


def register(connection_id: str, workspace_id: str, user_id: str, role: str, expires_at: int) -> None:
    """Store a new connection (one TransactWriteItems)."""
    expires = datetime.fromtimestamp(expires_at, UTC)
    now = utc_now()
    entry = LiveConnection(
        *_entry(workspace_id, connection_id),
        workspace_id=workspace_id,
        connection_id=connection_id,
        user_id=user_id,
        role=role,
        connected_at=now,
        expires_at=expires,
    )
    pointer = LiveConnection(
        *_pointer(connection_id), workspace_id=workspace_id, connection_id=connection_id, expires_at=expires
    )

    def write(txn: TransactWrite) -> None:
        txn.save(entry)
        txn.save(pointer)

    transact(LiveConnection, "connect#" + connection_id, write)


def forget(connection_id: str) -> bool:
    """Delete a connection found by its id alone ($disconnect): one GetItem, then one
    TransactWriteItems; False when it was not stored (refused, or already cleaned up)."""
    pointer = get_or_none(LiveConnection, *_pointer(connection_id))
    if pointer is None:
        return False
    drop(pointer.workspace_id, connection_id)
    return True


def drop(workspace_id: str, connection_id: str) -> None:
    """Delete both items of a connection (one TransactWriteItems; deleting a gone item is no error)."""

    def write(txn: TransactWrite) -> None:
        txn.delete(LiveConnection(*_entry(workspace_id, connection_id)))
        txn.delete(LiveConnection(*_pointer(connection_id)))

    # Another token than register's: DynamoDB refuses a token reused with other parameters.
    transact(LiveConnection, "drop#" + connection_id, write)


def of_workspace(workspace_id: str) -> list[Connection]:
    """The workspace's connections: one Query (paged by DynamoDB only past 1 MB of them),
    strongly consistent so that a client connected just before an event receives it."""
    with dynamodb_errors():
        items = list(LiveConnection.query(WORKSPACE_PREFIX + workspace_id, consistent_read=True))
    return [
        Connection(item.connection_id, item.user_id or "", int(item.expires_at.timestamp()) if item.expires_at else 0)
        for item in items
    ]
