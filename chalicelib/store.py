"""Persistence: every DynamoDB call the service makes, through the PynamoDB models.

Each function is one request to DynamoDB unless its docstring says otherwise. Condition
failures become domain errors here; throttling and outages become ServiceUnavailable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import CancellationReason, PutError, PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.errors import Conflict, Forbidden, NotFound, PreconditionFailed
from chalicelib.ids import new_id, utc_now
from chalicelib.models import (
    EMAIL_PREFIX,
    FAILED,
    PENDING,
    PROCESSED,
    USER_PREFIX,
    USERNAME_PREFIX,
    Contact,
    ContactEmail,
    DeletionMark,
    Membership,
    Note,
    RateLimitRecord,
    UserRecord,
    Workspace,
    contact_note_key,
    dynamodb_client,
    query_contact_notes,
)
from chalicelib.normalize import NORMALIZER_VERSION
from chalicelib.outage import as_service_unavailable, unavailable

CONDITION_FAILED = "ConditionalCheckFailedException"


@contextmanager
def _dynamodb_errors() -> Iterator[None]:
    """Translate an unreachable, timing-out or throttling store into a 503 the client may retry."""
    try:
        yield
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        unavailable = as_service_unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


dynamodb_errors = _dynamodb_errors  # for the capabilities' own storage modules


def _condition_failed(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == CONDITION_FAILED


condition_failed = _condition_failed  # for the capabilities' own storage modules


TRANSACTION_ATTEMPTS = 3


def _transact(
    model: type[Any],
    token: str,
    write: Callable[[TransactWrite], None],
    reasons: list[CancellationReason | None] | None = None,
) -> list[int]:
    """Run one TransactWriteItems; return the positions whose condition failed ([] = committed).

    The client request token (the new item's id) makes botocore's own retries after a lost
    response idempotent. A transaction cancelled only because another one touched the same
    item at the same moment (TransactionConflict: two notes added to one contact at once)
    is tried again a few times after a short jittered pause, then answered 503. `reasons`, when
    given, receives the cancellation reasons (with the items that ask for them back).
    """
    # Reuse the model's connection (and its client) rather than building a new one.
    connection: Connection = model._get_connection().connection
    conflict: TransactWriteError | None = None
    for attempt in range(TRANSACTION_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0.01, 0.05) * 2**attempt)  # noqa: S311 (jitter, not security)
        try:
            with _dynamodb_errors(), TransactWrite(connection=connection, client_request_token=token) as txn:
                write(txn)
            return []
        except TransactWriteError as exc:
            codes = _cancellation_codes(exc)
            failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
            if failed:
                if reasons is not None:
                    reasons[:] = exc.cancellation_reasons
                return failed
            if not codes or any(code not in _RETRYABLE_CANCELLATIONS for code in codes if code != "None"):
                raise
            conflict = exc
    raise unavailable("DynamoDB", "TransactionConflict, retries exhausted", "is busy", 1) from conflict


transact = _transact  # for the capabilities' own storage modules

_RETRYABLE_CANCELLATIONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def _cancellation_codes(exc: TransactWriteError) -> list[str]:
    if exc.cause_response_code != "TransactionCanceledException":
        return []
    return [reason.code if reason is not None else "None" for reason in exc.cancellation_reasons]


Pending = TypeVar("Pending", list[dict[str, Any]], dict[str, Any])
AnyModel = TypeVar("AnyModel", bound=Model)


def _get_or_none(model: type[AnyModel], hash_key: str, range_key: str | None = None) -> AnyModel | None:
    """One consistent GetItem; None when there is no such item."""
    with _dynamodb_errors():
        try:
            return model.get(hash_key, range_key, consistent_read=True)
        except model.DoesNotExist:
            return None


get_or_none = _get_or_none  # for the capabilities' own storage modules


# ---- users ---------------------------------------------------------------------------


def username_key(username: str) -> str:
    return USERNAME_PREFIX + username.lower()


def email_key(email: str) -> str:
    return EMAIL_PREFIX + email.lower()


def create_user(user: UserRecord, personal: tuple[Workspace, Membership] | None = None) -> None:
    """Write the user and its username and email claims atomically (one transaction), with
    the user's personal workspace and owner membership when given (still one transaction)."""
    claims = [
        UserRecord(username_key(user.username or ""), user_id=user.user_id),
        UserRecord(email_key(user.email or ""), user_id=user.user_id),
    ]

    def write(txn: TransactWrite) -> None:
        for item in (user, *claims):
            txn.save(item, condition=UserRecord.pk.does_not_exist())
        if personal is not None:  # after the claims: their positions (1, 2) name the conflict
            workspace, membership = personal
            txn.save(workspace, condition=Workspace.workspace_id.does_not_exist())
            txn.save(membership, condition=Membership.user_id.does_not_exist())

    failed = _transact(UserRecord, user.user_id, write)
    if 1 in failed:
        raise Conflict("That username is already taken.")
    if 2 in failed:
        raise Conflict("That email address is already registered.")
    if failed:
        raise Conflict("That account already exists.")


def get_user(user_id: str) -> UserRecord | None:
    return _get_or_none(UserRecord, USER_PREFIX + user_id)


def find_user_by_username(username: str) -> UserRecord | None:
    """Two reads: the username claim, then the user it points to."""
    claim = _get_or_none(UserRecord, username_key(username))
    return None if claim is None else get_user(claim.user_id)


def find_user_by_email(email: str) -> UserRecord | None:
    """Two reads: the email claim, then the user it points to."""
    claim = _get_or_none(UserRecord, email_key(email))
    return None if claim is None else get_user(claim.user_id)


# ---- owned, versioned items (contacts and notes) ----------------------------------------

OwnedItem = TypeVar("OwnedItem", Contact, Note)


def _version_condition(model: type[OwnedItem], expected_version: int | None) -> Condition:
    condition = model.version.exists()
    if expected_version is not None:
        condition &= model.version == expected_version
    return condition


def _update(
    model: type[OwnedItem], owner_id: str, item_id: str, actions: list[Action], expected_version: int | None
) -> OwnedItem:
    """One conditional UpdateItem (version + 1) on an existing item; returns the item as stored."""
    item = model(owner_id, item_id)
    try:
        with _dynamodb_errors():
            item.update(actions=[*actions, model.version.add(1)], condition=_version_condition(model, expected_version))
    except PynamoDBException as exc:
        if _condition_failed(exc):
            _raise_missing_or_stale(model, owner_id, item_id)
        raise
    return item


def _raise_missing_or_stale(model: type[OwnedItem], owner_id: str, item_id: str) -> None:
    """After a failed condition (rare path, one read): missing is 404, changed (If-Match) is 412."""
    what = model.__name__
    if _get_or_none(model, owner_id, item_id) is not None:
        raise PreconditionFailed(f"The {what.lower()} has changed since the version you sent.")
    raise NotFound(f"{what} not found.")


# ---- contacts ------------------------------------------------------------------------


WORKSPACE_GONE = "This workspace no longer exists."


class Unchanged:
    """The email is not part of a change (a PATCH without it)."""


UNCHANGED = Unchanged()


def _check_workspace(txn: TransactWrite, workspace_id: str) -> None:
    """Condition a write into a shared workspace on the workspace still existing.

    A member's access token outlives the workspace's deletion (until it expires), and the
    deletion's sweep (chalicelib.workspaces.purge) only removes what exists when it runs.
    Checking the Workspace item in the very transaction that creates an item means nothing
    can be created after the deletion committed, so nothing is left behind (no orphans).
    Personal workspaces cannot be deleted, and older ones have no item: they are not checked.
    """
    txn.condition_check(Workspace, workspace_id, condition=Workspace.workspace_id.exists())


EMAIL_TAKEN = "Another contact in this workspace has that email (existing_id names it)."


def contact_email_key(email: str | None) -> str | None:
    """The form a contact's email is claimed under: one contact per email ignoring case."""
    return email.strip().lower() if email else None


def _email_taken(owner_id: str, key: str) -> Conflict:
    """A 409 naming the contact that holds the email (one read, on this rare path)."""
    claim = _get_or_none(ContactEmail, owner_id, key)
    return Conflict(EMAIL_TAKEN, extra={"existing_id": claim.contact_id} if claim else {})


email_taken = _email_taken  # for the bulk writes (chalicelib.transfer)


def _claim(txn: TransactWrite, owner_id: str, key: str, contact_id: str) -> None:
    txn.save(ContactEmail(owner_id, key, contact_id=contact_id), condition=ContactEmail.email.does_not_exist())


def _release(txn: TransactWrite, owner_id: str, key: str, contact_id: str) -> None:
    txn.delete(ContactEmail(owner_id, key), condition=ContactEmail.contact_id == contact_id)


def put_new_contact(contact: Contact, *, shared: bool = False) -> None:
    """One PutItem; one transaction instead when the contact claims an email (the claim's
    condition is what keeps one contact per email) or, in a shared workspace, to check the
    workspace still exists."""
    key = contact_email_key(contact.email)
    contact.email_key = key
    if not shared and key is None:
        with _dynamodb_errors():
            contact.save(condition=Contact.contact_id.does_not_exist())
        return

    def write(txn: TransactWrite) -> None:
        if shared:
            _check_workspace(txn, contact.owner_id)  # position 0: condition checks come first
        txn.save(contact, condition=Contact.contact_id.does_not_exist())
        if key is not None:
            _claim(txn, contact.owner_id, key, contact.contact_id)

    failed = _transact(Contact, contact.contact_id, write)
    positions = {"workspace": 0 if shared else -1, "contact": 1 if shared else 0}
    if positions["workspace"] in failed:
        raise Forbidden(WORKSPACE_GONE)
    if positions["contact"] in failed:
        raise Conflict("That contact already exists.")
    if failed and key is not None:
        raise _email_taken(contact.owner_id, key)


def get_contact(owner_id: str, contact_id: str) -> Contact | None:
    return _get_or_none(Contact, owner_id, contact_id)


def update_contact(
    owner_id: str,
    contact_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
    new_email: str | Unchanged | None = UNCHANGED,
) -> Contact:
    """Set the attributes `changes` names on an existing contact (None removes one); return
    the new item.

    Without an email in the change, one UpdateItem. With one, the same UpdateItem on the
    condition that the contact already holds that email (ignoring case: a PUT that resends
    it); otherwise (the email really changes) the contact is read and one transaction moves
    the claim: release the old email, claim the new one (409 naming its holder if taken).
    """
    actions = set_or_remove(Contact, changes)
    if isinstance(new_email, Unchanged):
        return _update(Contact, owner_id, contact_id, actions, expected_version)
    key = contact_email_key(new_email)
    same = Contact.email_key == key if key else Contact.email_key.does_not_exist()
    item = Contact(owner_id, contact_id)
    try:
        with _dynamodb_errors():
            item.update(
                actions=[*actions, Contact.version.add(1)],
                condition=_version_condition(Contact, expected_version) & same,
            )
        return item
    except PynamoDBException as exc:
        if not _condition_failed(exc):
            raise
    return _move_email(owner_id, contact_id, changes, expected_version, key)


def set_or_remove(model: type[Contact], changes: dict[str, Any]) -> list[Action]:
    """The update actions for `changes`: None removes an attribute, anything else sets it."""
    return [getattr(model, name).remove() if value is None else getattr(model, name).set(value)
            for name, value in changes.items()]  # fmt: skip


def _current(owner_id: str, contact_id: str, expected_version: int | None) -> Contact:
    """The contact as stored, after a failed condition: 404 if gone, 412 if not the version sent."""
    current = _get_or_none(Contact, owner_id, contact_id)
    if current is None:
        raise NotFound("Contact not found.")
    if expected_version is not None and int(current.version) != expected_version:
        raise PreconditionFailed("The contact has changed since the version you sent.")
    return current


def _move_email(
    owner_id: str, contact_id: str, changes: dict[str, Any], expected_version: int | None, key: str | None
) -> Contact:
    current = _current(owner_id, contact_id, expected_version)
    old = current.email_key
    releasing, claiming = old is not None and old != key, key is not None and key != old
    changes = {**changes, "email_key": key}

    def write(txn: TransactWrite) -> None:
        if releasing and old is not None:
            _release(txn, owner_id, old, contact_id)
        if claiming and key is not None:
            _claim(txn, owner_id, key, contact_id)
        txn.update(
            Contact(owner_id, contact_id),
            actions=[*set_or_remove(Contact, changes), Contact.version.add(1)],
            condition=Contact.version == current.version,  # nothing changed since the read
        )

    failed = _transact(Contact, new_id(), write)
    # Sent in this order (PynamoDB): deletes (the old claim), puts (the new one), updates.
    claim_at, contact_at = int(releasing), int(releasing) + int(claiming)
    if contact_at in failed:
        _current(owner_id, contact_id, None)  # 404 if it was deleted meanwhile
        raise Conflict("The contact changed at the same moment; read it again and retry.")
    if claiming and claim_at in failed:
        raise _email_taken(owner_id, key or "")
    if failed:  # the old claim is no longer this contact's
        raise Conflict("The contact's email claim changed at the same moment; retry.")
    for name, value in changes.items():  # what the transaction wrote: no read of it back
        setattr(current, name, value)
    current.version = int(current.version) + 1
    return current


DELETE_ATTEMPTS = 3  # a note added between the read and the delete makes it read again


MARK_LIFETIME = timedelta(days=2)  # past the streams' 24-hour retention


def deletion_mark(owner_id: str, kind: str, item_id: str, actor: str, at: str) -> DeletionMark:
    """Who deletes an item: written in the delete's own transaction (chalicelib.events reads it)."""
    expires = datetime.now(UTC) + MARK_LIFETIME
    return DeletionMark(owner_id, f"{kind}#{item_id}", actor_id=actor, deleted_at=at, expires_at=expires)


def delete_contact(owner_id: str, contact_id: str, expected_version: int | None, actor: str) -> bool:
    """Delete the contact; return whether it ever had a note (its notes then need a sweep).

    Every delete is a transaction with the deleter's mark (DeletionMark), so the change event
    names who deleted. One transaction for a contact without an email or notes. Otherwise the
    first transaction's failed condition hands back the contact as stored, which is then
    deleted as it was, with its claim, so the email is free again exactly when it is gone; that
    transaction also requires the notes mark as read, so a note added meanwhile is swept (a
    first note sets the mark without a new version). Two calls, no read.
    """
    condition = (
        _version_condition(Contact, expected_version)
        & Contact.email_key.does_not_exist()
        & Contact.has_notes.does_not_exist()
    )
    mark = deletion_mark(owner_id, "contact", contact_id, actor, utc_now())

    def write(txn: TransactWrite) -> None:
        # PynamoDB's TransactWrite.delete cannot ask for the item back on a failed condition
        # (its save and update can): the same request, built by the model, with that option.
        txn._delete_items.append(
            Contact(owner_id, contact_id).get_delete_kwargs_from_instance(
                condition=condition, return_values_on_condition_failure=ALL_OLD
            )
        )
        txn.save(mark)

    reasons: list[CancellationReason | None] = []
    if not _transact(Contact, new_id(), write, reasons):
        return False
    stored = reasons[0].raw_item if reasons and reasons[0] is not None else None
    if stored is None:
        raise NotFound("Contact not found.")
    current = Contact.from_raw_data(stored)
    for _ in range(DELETE_ATTEMPTS):
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailed("The contact has changed since the version you sent.")
        if _delete_with_claim(current, mark) is None:
            return bool(current.has_notes)
        current = _current(owner_id, contact_id, expected_version)  # 404 if gone, 412 if changed
    raise Conflict("The contact changed at the same moment; read it again and retry.")


def _delete_with_claim(current: Contact, mark: DeletionMark) -> list[int] | None:
    """The transaction: the contact (as read), its claim and the deleter's mark; None when it
    committed. PynamoDB sends deletes before puts: [contact, claim, mark]."""
    owner_id, contact_id = current.owner_id, current.contact_id
    notes_as_read = Contact.has_notes.exists() if current.has_notes else Contact.has_notes.does_not_exist()

    def write(txn: TransactWrite) -> None:
        txn.delete(Contact(owner_id, contact_id), condition=(Contact.version == current.version) & notes_as_read)
        if current.email_key is not None:
            _release(txn, owner_id, current.email_key, contact_id)
        txn.save(mark)

    failed = _transact(Contact, new_id(), write)
    if failed and 0 not in failed:  # only the claim: it is no longer this contact's
        raise Conflict("The contact's email claim changed at the same moment; retry.")
    return failed or None


def query_contacts(owner_id: str, limit: int, after_id: str | None) -> list[Contact]:
    """One Query: up to `limit` contacts, newest first, after the given id."""
    start = {"owner_id": {"S": owner_id}, "contact_id": {"S": after_id}} if after_id else None
    with _dynamodb_errors():
        return list(
            Contact.query(
                owner_id,
                consistent_read=True,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            )
        )


# ---- notes ---------------------------------------------------------------------------


def put_new_note(note: Note, *, shared: bool = False) -> None:
    """One transaction: the note is written only while its contact (and, in a shared
    workspace, the workspace) exists."""

    def write(txn: TransactWrite) -> None:
        if shared:
            _check_workspace(txn, note.owner_id)
        # Marking the contact (instead of a bare ConditionCheck) costs nothing more in the same
        # transaction and lets a delete of a contact that never had notes skip the sweep.
        contact = Contact(note.owner_id, note.contact_id)
        txn.update(contact, actions=[Contact.has_notes.set(True)], condition=Contact.contact_id.exists())
        txn.save(note, condition=Note.note_id.does_not_exist())

    failed = _transact(Note, note.note_id, write)
    # PynamoDB sends condition checks, then puts, then updates: [workspace,] note, contact.
    first = 1 if shared else 0
    if shared and 0 in failed:
        raise Forbidden(WORKSPACE_GONE)
    if first + 1 in failed:
        raise NotFound("Contact not found.")
    if failed:
        raise Conflict("That note already exists.")


def get_note(owner_id: str, note_id: str) -> Note | None:
    return _get_or_none(Note, owner_id, note_id)


def update_note(owner_id: str, note_id: str, actions: list[Action], expected_version: int | None) -> Note:
    return _update(Note, owner_id, note_id, actions, expected_version)


def delete_note(owner_id: str, note_id: str, expected_version: int | None, actor: str) -> None:
    """One transaction: the note and the deleter's mark (chalicelib.events)."""
    condition = _version_condition(Note, expected_version)
    mark = deletion_mark(owner_id, "note", note_id, actor, utc_now())

    def write(txn: TransactWrite) -> None:
        txn.delete(Note(owner_id, note_id), condition=condition)
        txn.save(mark)

    if _transact(Note, new_id(), write):
        _raise_missing_or_stale(Note, owner_id, note_id)


def query_notes(owner_id: str, contact_id: str, limit: int, after_id: str | None) -> list[Note]:
    """One Query on the by-contact index: a contact's notes, newest first."""
    start = None
    if after_id:
        start = {
            "owner_id": {"S": owner_id},
            "note_id": {"S": after_id},
            "contact_note": {"S": contact_note_key(contact_id, after_id)},
        }
    with _dynamodb_errors():
        notes = query_contact_notes(
            owner_id, contact_id, scan_index_forward=False, limit=limit, page_size=limit, last_evaluated_key=start
        )
        return list(notes)


def delete_notes_of_contact(owner_id: str, contact_id: str) -> None:
    """Remove every note of a contact: a keys-only Query per page and batched deletes.

    Items DynamoDB leaves unprocessed (throttling) are a 503: the client repeats the DELETE,
    which sweeps what is left (services.delete_contact), so no note is orphaned.
    """
    try:
        with _dynamodb_errors():
            keys = query_contact_notes(owner_id, contact_id, attributes_to_get=["owner_id", "note_id"])
            with Note.batch_write() as batch:
                for note in keys:
                    batch.delete(note)
    except PutError as exc:
        if exc.cause is not None:
            raise
        raise unavailable("DynamoDB", "BatchWriteItem left items unprocessed", "is busy", 1) from exc


def notes_of_contacts(owner_id: str, lowest_id: str, highest_id: str) -> Iterator[Note]:
    """The notes of the contacts whose ids lie from `lowest_id` to `highest_id`, newest contact
    first and each contact's notes newest first: Queries on the by_contact index (a range of
    its "<contact_id>#<note_id>" keys), one per 1 MB page, each sent only when the caller reads
    that far. Notes of contacts in the range that are not the caller's concern (a contact being
    deleted) come too: the caller picks the ones it wants.
    """
    # "~" sorts after every character of a note id (ULIDs are digits and capitals).
    keys = Note.contact_note.between(contact_note_key(lowest_id), contact_note_key(highest_id, "~"))
    with _dynamodb_errors():
        yield from Note.by_contact.query(owner_id, keys, consistent_read=True, scan_index_forward=False)


# ---- normalizer write-back ---------------------------------------------------------------


def _pending_at(expected_version: int) -> Condition:
    """Only the exact version the stream record saw, and only while it waits to be processed."""
    return (Note.version == expected_version) & (Note.processing_status == PENDING)


def save_normalized(
    owner_id: str, note_id: str, expected_version: int, *, body: str, original: str, tags: list[str], at: str
) -> bool:
    """One conditional UpdateItem with the normalizer's result.

    False (and nothing written) when the note has moved on: edited again, already
    processed, or deleted. That is what makes replays and out-of-order records harmless.
    """
    actions: list[Action] = [
        Note.body.set(body),
        Note.original_body.set(original) if original != body else Note.original_body.remove(),
        Note.tags.set(tags),  # type: ignore[arg-type]  # PynamoDB types list elements as attributes
        Note.processing_status.set(PROCESSED),
        Note.processed_at.set(at),
        Note.normalizer_version.set(NORMALIZER_VERSION),
        Note.failure_reason.remove(),
        Note.processing_attempts.remove(),
        Note.version.add(1),
    ]
    return _conditional_note_update(owner_id, note_id, actions, _pending_at(expected_version))


def count_failed_attempt(owner_id: str, note_id: str, expected_version: int) -> int | None:
    """Add one to the note's failed attempts; the new count, or None if the note moved on."""
    item = Note(owner_id, note_id)
    try:
        with _dynamodb_errors():
            item.update(actions=[Note.processing_attempts.add(1)], condition=_pending_at(expected_version))
    except PynamoDBException as exc:
        if _condition_failed(exc):
            return None
        raise
    return int(item.processing_attempts or 0)


def mark_failed(owner_id: str, note_id: str, expected_version: int, *, reason: str, at: str) -> None:
    """Mark the note failed, unless it has moved on since (then nothing is written)."""
    actions: list[Action] = [
        Note.processing_status.set(FAILED),
        Note.failure_reason.set(reason),
        Note.processed_at.set(at),
        Note.normalizer_version.set(NORMALIZER_VERSION),
        Note.version.add(1),
    ]
    _conditional_note_update(owner_id, note_id, actions, _pending_at(expected_version))


def _conditional_note_update(owner_id: str, note_id: str, actions: list[Action], condition: Condition) -> bool:
    try:
        with _dynamodb_errors():
            Note(owner_id, note_id).update(actions=actions, condition=condition)
    except PynamoDBException as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


# ---- rate limits ------------------------------------------------------------------------------
# Raw UpdateItem through the model's own client: PynamoDB does not expose
# ReturnValuesOnConditionCheckFailure, which lets a refused update tell us the item's state
# without a read.


def limiter_update(key: str, update: str, condition: str, values: dict[str, int]) -> tuple[bool, dict[str, int]]:
    """One conditional UpdateItem on a limiter item.

    Returns (True, item after) when the condition held, (False, item before) when it did not
    ({} for an absent item). An unreachable or throttling store raises ServiceUnavailable;
    other failures raise botocore's errors.
    """
    client = dynamodb_client()
    with _dynamodb_errors():
        try:
            out = client.update_item(
                TableName=RateLimitRecord.Meta.table_name,
                Key={"key": {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={name: {"N": str(value)} for name, value in values.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                return False, _numbers(exc.response.get("Item") or {})
            raise
    return True, _numbers(out.get("Attributes") or {})


def _numbers(item: dict[str, Any]) -> dict[str, int]:
    return {name: int(float(value["N"])) for name, value in item.items() if "N" in value}


def get_login_state(key: str) -> dict[str, int]:
    record = _get_or_none(RateLimitRecord, key)
    if record is None:
        return {}
    return {
        name: int(value)
        for name, value in (("failures", record.failures), ("locked_until", record.locked_until))
        if value is not None
    }


_LOGIN_STATE = ("failures", "locked_until")


def find_user_id_and_login_state(username: str, login_key: str) -> tuple[str | None, dict[str, int]]:
    """One BatchGetItem over two tables, strongly consistent: the user id the username's claim
    names (None when nobody has it) and the account's lockout state ({} when there is none)."""
    users, limits = UserRecord.Meta.table_name, RateLimitRecord.Meta.table_name
    request = {
        users: {"Keys": [{"pk": {"S": username_key(username)}}], "ConsistentRead": True},
        limits: {"Keys": [{"key": {"S": login_key}}], "ConsistentRead": True},
    }
    with _dynamodb_errors():
        out = dynamodb_client().batch_get_item(RequestItems=request)
    if out.get("UnprocessedKeys"):  # only when DynamoDB throttles: the client may retry
        raise unavailable("DynamoDB", "BatchGetItem left keys unprocessed", "is busy", 1)
    claims, states = out["Responses"].get(users, []), out["Responses"].get(limits, [])
    user_id = str(claims[0]["user_id"]["S"]) if claims else None
    state = {name: value for name, value in _numbers(states[0]).items() if name in _LOGIN_STATE} if states else {}
    return user_id, state


def clear_login_state(key: str) -> None:
    with _dynamodb_errors():
        RateLimitRecord(key).delete()


# ---- BatchWriteItem with its leftovers sent again -------------------------------------------

BATCH_WRITE_LIMIT = 25  # DynamoDB's, per BatchWriteItem call
UNPROCESSED_RESENDS = 5
BACKOFF_BASE_SECONDS = 0.05  # full jitter up to 0.1, 0.2, ... 1.6 s: about 1.6 s at most in all


class UnprocessedWrites(RuntimeError):
    """DynamoDB kept leaving items unprocessed (throttling): the caller fails, to be retried."""


def batch_write(table_name: str, requests: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 requests per call, the items each call leaves unprocessed sent again.

    Not PynamoDB's batch_write: it resends without any wait, and only max_retry_attempts - 1
    times, which with this project's MAX_RETRY_ATTEMPTS = 1 is never, so one throttled call
    failed the whole stream record. Here: DynamoDB's advice, exponential backoff with jitter.
    """
    client = dynamodb_client()

    def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = client.batch_write_item(RequestItems={table_name: chunk})
        return answer.get("UnprocessedItems", {}).get(table_name) or []

    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        left = _resend_unprocessed(send, requests[start : start + BATCH_WRITE_LIMIT])
        if left:
            raise UnprocessedWrites(f"{len(left)} items still unprocessed after {UNPROCESSED_RESENDS} resends")


def _resend_unprocessed(send: Callable[[Pending], Pending], pending: Pending) -> Pending:
    """send(pending), then send what DynamoDB left unprocessed again after a jittered
    exponential backoff (DynamoDB's advice), up to UNPROCESSED_RESENDS times; what is still
    left (empty: nothing)."""
    for resend in range(UNPROCESSED_RESENDS + 1):
        if resend:
            time.sleep(random.uniform(0, BACKOFF_BASE_SECONDS * 2**resend))  # noqa: S311 (not crypto)
        pending = send(pending)
        if not pending:
            break
    return pending


BATCH_GET_LIMIT = 100  # keys per BatchGetItem call (DynamoDB's)
Readable = TypeVar("Readable", Contact, ContactEmail)


def batch_get(model: type[Readable], keys: list[tuple[str, str]]) -> list[Readable]:
    """The items that exist among `keys` (hash, range), strongly consistent: BatchGetItem, 100
    keys per call, the keys a call leaves unprocessed asked again after a jittered backoff.

    Not PynamoDB's batch_get, for the reason batch_write gives: with MAX_RETRY_ATTEMPTS = 1 it
    would ask for unprocessed keys again without any wait.
    """
    client = dynamodb_client()
    table: str = model.Meta.table_name
    hash_name, range_name = model._hash_key_attribute().attr_name, model._range_key_attribute().attr_name
    found: list[Readable] = []

    def send(request: dict[str, Any]) -> dict[str, Any]:
        with _dynamodb_errors():
            answer = client.batch_get_item(RequestItems={table: request})
        found.extend(model.from_raw_data(item) for item in answer.get("Responses", {}).get(table, []))
        return answer.get("UnprocessedKeys", {}).get(table) or {}

    for start in range(0, len(keys), BATCH_GET_LIMIT):
        wanted = [{hash_name: {"S": h}, range_name: {"S": r}} for h, r in keys[start : start + BATCH_GET_LIMIT]]
        if _resend_unprocessed(send, {"Keys": wanted, "ConsistentRead": True}):
            raise unavailable("DynamoDB", "BatchGetItem left keys unprocessed", "is busy", 1)
    return found
