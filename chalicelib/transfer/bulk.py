"""The bulk write engine: many contacts, their email claims and notes in few DynamoDB calls.

A `Unit` is everything one row of an import or one operation of a batch writes, all or nothing
(a contact, its email claim, its notes). Units are packed, in order, into TransactWriteItems of
at most 100 actions and about 3.5 MB (DynamoDB's limits: 100 actions, 4 MB). Transactions, not
BatchWriteItem, because one contact per email is kept by the claim's put condition, which only
a transaction can tie to the contact's own write. A transaction cancelled because some unit's
condition failed (an email claimed meanwhile, a contact changed or deleted) is sent again
without those units, which are reported: one unit's failure never undoes another's.

Written here rather than taken from a library: PynamoDB offers transactions and batch writes,
not the packing and the retry-without-the-failed-units that bulk imports need.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib import store
from chalicelib.errors import Forbidden, ServiceUnavailable
from chalicelib.ids import new_id
from chalicelib.models import Contact, ContactEmail, DeletionMark, Note, Workspace
from chalicelib.web import logger

MAX_ACTIONS = 100  # per TransactWriteItems
MAX_BYTES = 3_500_000  # per TransactWriteItems, estimated, under DynamoDB's 4 MB
NOTES_PER_UNIT = 48  # a row's notes beyond these go in follow-up units (notes_unit)
NOTE_BYTES_PER_UNIT = 3_000_000

# After the condition checks (the workspace's), the order PynamoDB sends a transaction's actions in.
DELETE, PUT, UPDATE = range(3)

Adder = Callable[[TransactWrite], None]


@dataclass
class _Action:
    kind: int
    label: str  # what failed, when its condition does: "contact", "email", "old_email", "note"
    item: tuple[str, str, str]  # (table, hash key, range key): one action per item per transaction
    add: Adder
    size: int


@dataclass
class Unit:
    """What one row or operation writes, all or nothing. `key`: the caller's index for it."""

    key: int
    actions: list[_Action] = field(default_factory=list)
    written: bool = False  # set once its transaction committed

    @property
    def size(self) -> int:
        return sum(a.size for a in self.actions)

    def put(self, label: str, item: Contact | ContactEmail | Note | DeletionMark, condition: Condition | None) -> None:
        def add(txn: TransactWrite) -> None:
            txn.save(item, condition=condition)

        self.actions.append(_Action(PUT, label, _key(item), add, _size(item)))

    def update(self, label: str, item: Contact, actions: list[Action], condition: Condition | None) -> None:
        def add(txn: TransactWrite) -> None:
            txn.update(item, actions=actions, condition=condition)

        self.actions.append(_Action(UPDATE, label, _key(item), add, 300 + 300 * len(actions)))

    def delete(self, label: str, item: Contact | ContactEmail, condition: Condition | None) -> None:
        def add(txn: TransactWrite) -> None:
            txn.delete(item, condition=condition)

        self.actions.append(_Action(DELETE, label, _key(item), add, 200))


def _key(item: Contact | ContactEmail | Note | DeletionMark) -> tuple[str, str, str]:
    hash_name, range_name = item._hash_key_attribute().attr_name, item._range_key_attribute().attr_name
    return (item.Meta.table_name, str(getattr(item, hash_name)), str(getattr(item, range_name)))


def _size(item: Contact | ContactEmail | Note | DeletionMark) -> int:
    """Roughly the bytes the item takes in a request: its names and values, and some framing
    (cheaper than serializing it, which its transaction does anyway)."""
    values = item.attribute_values
    return 100 + sum(len(name) + 10 + len(str(value).encode()) for name, value in values.items())


UNAVAILABLE = "unavailable"  # the label of units not written because DynamoDB stayed busy
MORE_NOTES = "more_notes"  # the label of a row's follow-up notes (its contact went in before)


def commit(
    units: list[Unit], shared_workspace: str | None = None, workers: int = 1, deadline: float | None = None
) -> dict[int, str]:
    """Write every unit; return {unit key: label of the action whose condition failed, or
    UNAVAILABLE} for those not written. In a shared workspace each transaction also checks that
    the workspace still exists (chalicelib.store._check_workspace); if it is gone, Forbidden.

    Transactions that touch no item an earlier one touches are sent concurrently (`workers` at
    a time, Settings.write_workers); one that does waits for it (a batch's later operation on
    the same contact). None is started after `deadline` (time.monotonic()): its units are
    UNAVAILABLE, so that a slow store still gets an answer in time.
    """
    failed: dict[int, str] = {}

    def send(group: list[Unit]) -> dict[int, str]:
        # A unit whose key already failed in an earlier wave is not sent: a row's follow-up
        # notes (notes_units) never go in after its contact did not.
        group = [unit for unit in group if unit.key not in failed]
        if not group:
            return {}
        if deadline is not None and time.monotonic() > deadline:
            return {unit.key: UNAVAILABLE for unit in group}
        return _commit_group(group, shared_workspace)

    for wave in _waves(_packed(units, reserved=1 if shared_workspace else 0)):
        with ThreadPoolExecutor(min(workers, len(wave))) as pool:
            outcomes = list(pool.map(send, wave))
        for outcome in outcomes:  # the first failure of a key is the one that says why
            for key, label in outcome.items():
                failed.setdefault(key, label)
    return failed


def _commit_group(group: list[Unit], shared_workspace: str | None) -> dict[int, str]:
    failed: dict[int, str] = {}
    pending = group
    while pending:  # each round removes at least one unit, or ends
        order = _send_order(pending, shared_workspace)
        try:
            codes = store.transact(Contact, new_id(), _writer(pending, shared_workspace))
        except (ServiceUnavailable, PynamoDBException, BotoCoreError, ClientError):
            # Throttled or unreachable even after retries, or refused (a transaction still in
            # progress, a validation error): these units only, reported; the others go on.
            logger.warning("a bulk transaction of %d units was not written", len(pending), exc_info=True)
            return failed | {unit.key: UNAVAILABLE for unit in pending}
        if not codes:
            for unit in pending:
                unit.written = True
            break
        if shared_workspace and 0 in codes:
            raise Forbidden(store.WORKSPACE_GONE)
        for position in codes:
            unit, label = order[position]
            failed.setdefault(unit.key, label)
        pending = [unit for unit in pending if unit.key not in failed]
    return failed


def _waves(groups: list[list[Unit]]) -> list[list[list[Unit]]]:
    """Groups in waves: a group goes in the wave after the last one touching any of its items."""
    waves: list[list[list[Unit]]] = []
    last_wave: dict[tuple[str, str, str], int] = {}
    for group in groups:
        items = {a.item for unit in group for a in unit.actions}
        wave = 1 + max((last_wave[item] for item in items if item in last_wave), default=-1)
        if wave == len(waves):
            waves.append([])
        waves[wave].append(group)
        for item in items:
            last_wave[item] = wave
    return waves


def _packed(units: list[Unit], reserved: int) -> list[list[Unit]]:
    """Consecutive units grouped into transactions, in order; a unit touching an item the
    current transaction already touches starts the next one (DynamoDB refuses two actions on
    one item in a transaction, and the later unit must see the earlier one's result)."""
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    count, size, items = reserved, 0, set[tuple[str, str, str]]()
    for unit in units:
        touched = {a.item for a in unit.actions}
        if current and (count + len(unit.actions) > MAX_ACTIONS or size + unit.size > MAX_BYTES or touched & items):
            groups.append(current)
            current, count, size, items = [], reserved, 0, set()
        current.append(unit)
        count, size, items = count + len(unit.actions), size + unit.size, items | touched
    if current:
        groups.append(current)
    return groups


def _send_order(units: list[Unit], shared_workspace: str | None) -> list[tuple[Unit, str]]:
    """Which unit and action each position of the transaction is (for its cancellation reasons)."""
    order: list[tuple[Unit, str]] = []
    if shared_workspace:
        order.append((units[0], "workspace"))
    for kind in (DELETE, PUT, UPDATE):
        order.extend((unit, a.label) for unit in units for a in unit.actions if a.kind == kind)
    return order


def _writer(units: list[Unit], shared_workspace: str | None) -> Callable[[TransactWrite], None]:
    def write(txn: TransactWrite) -> None:
        if shared_workspace:
            txn.condition_check(Workspace, shared_workspace, condition=Workspace.workspace_id.exists())
        for unit in units:
            for action in unit.actions:
                action.add(txn)

    return write


# ---- reading many items at once ------------------------------------------------------------


def claims(owner_id: str, keys: list[str], workers: int = 1) -> dict[str, str]:
    """{email key: contact id} for the keys some contact of the workspace holds (BatchGetItem,
    100 keys per call, `workers` calls at a time)."""
    wanted = [(owner_id, key) for key in dict.fromkeys(keys)]
    chunks = [wanted[i : i + store.BATCH_GET_LIMIT] for i in range(0, len(wanted), store.BATCH_GET_LIMIT)]
    with ThreadPoolExecutor(max(1, min(workers, len(chunks)))) as pool:
        found = list(pool.map(lambda chunk: store.batch_get(ContactEmail, chunk), chunks))
    return {item.email: item.contact_id for items in found for item in items}


def contacts(owner_id: str, contact_ids: list[str]) -> dict[str, Contact]:
    """The contacts that exist among these ids (BatchGetItem)."""
    items = store.batch_get(Contact, [(owner_id, cid) for cid in dict.fromkeys(contact_ids)])
    return {item.contact_id: item for item in items}


def notes_units(key: int, contact: Contact, notes: list[Note]) -> tuple[list[Note], list[Unit]]:
    """Split a contact's new notes: those that go in its own unit, and follow-up units for the
    rest (each marks the contact as having notes, on the condition that it exists)."""
    first, rest = _take(notes, NOTES_PER_UNIT)
    units = []
    while rest:
        chunk, rest = _take(rest, MAX_ACTIONS - 2)
        unit = Unit(key)
        unit.update(MORE_NOTES, Contact(contact.owner_id, contact.contact_id), [Contact.has_notes.set(True)],
                    Contact.contact_id.exists())  # fmt: skip
        for note in chunk:
            unit.put(MORE_NOTES, note, None)
        units.append(unit)
    return first, units


def notes_written(units: list[Unit]) -> int:
    """How many notes the written units among these put."""
    return sum(1 for unit in units if unit.written for a in unit.actions if a.item[0] == Note.Meta.table_name)


def _take(notes: list[Note], count: int) -> tuple[list[Note], list[Note]]:
    """The first notes up to `count` and NOTE_BYTES_PER_UNIT (at least one), and the rest."""
    taken, size = 0, 0
    while taken < min(count, len(notes)):
        size += _size(notes[taken])
        if taken and size > NOTE_BYTES_PER_UNIT:
            break
        taken += 1
    return notes[:taken], notes[taken:]
