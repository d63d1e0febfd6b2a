"""POST /contacts/batch: up to 100 create, upsert, update and delete operations, each answered
on its own, written together by the bulk engine.

Calls: one BatchGetItem for the emails the operations name (who holds them), one for the
contacts updates and deletes name, then the transactions (100 creates with an email: 2). Each
operation is planned against what was read and what the operations before it will have done,
so its status is the one it would have had alone, sent in that order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from chalicelib import services, store
from chalicelib.config import Settings
from chalicelib.errors import (
    AppError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    ValidationFailed,
)
from chalicelib.ids import is_valid_id, utc_now
from chalicelib.models import Contact, ContactEmail
from chalicelib.schemas import Problem
from chalicelib.transfer import bulk
from chalicelib.transfer.schemas import (
    MAX_OPERATIONS,
    BatchOut,
    BatchResult,
    CreateOp,
    DeleteOp,
    UpdateOp,
    UpsertOp,
)
from chalicelib.web import problem_body, validation_errors

OPERATIONS: dict[str, type[CreateOp | UpsertOp | UpdateOp | DeleteOp]] = {
    "create": CreateOp,
    "upsert": UpsertOp,
    "update": UpdateOp,
    "delete": DeleteOp,
}
CHANGED = "The contact changed at the same moment; read it again and retry."
FIELDS = ("first_name", "last_name", "email", "phone", "company", "title")


@dataclass
class _Planned:
    """A contact as the operations before this one will have left it."""

    version: int
    email_key: str | None
    has_notes: bool
    deleted: bool = False


@dataclass
class _Plan:
    owner_id: str
    settings: Settings
    now: str
    actor: str
    holders: dict[str, str]  # email key -> contact id, as the operations before will have left them
    contacts: dict[str, _Planned]
    units: list[bulk.Unit] = field(default_factory=list)
    results: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # index -> (status, id)
    problems: dict[int, AppError] = field(default_factory=dict)
    swept: dict[int, str] = field(default_factory=dict)  # deletes of contacts whose notes need a sweep


def run_batch(
    settings: Settings, owner_id: str, operations: list[Any], *, actor: str, shared: bool
) -> tuple[int, BatchOut]:
    if len(operations) > MAX_OPERATIONS:
        raise PayloadTooLarge(f"{len(operations)} operations; at most {MAX_OPERATIONS} per batch. Split them.")
    parsed: dict[int, Any] = {}
    problems: dict[int, AppError] = {}
    for index, raw in enumerate(operations):
        model = OPERATIONS.get(str(raw.get("op"))) if isinstance(raw, dict) else None
        if model is None:
            detail = f"must be one of {', '.join(OPERATIONS)}"
            errors = [{"pointer": f"#/operations/{index}/op", "detail": detail, "type": "literal_error"}]
            problems[index] = ValidationFailed("The operation has invalid fields.", errors=errors)
            continue
        try:
            parsed[index] = model.model_validate(raw)
        except ValidationError as exc:
            errors = validation_errors(exc, f"#/operations/{index}")
            problems[index] = ValidationFailed("The operation has invalid fields.", errors=errors)
    plan = _read(settings, owner_id, parsed, actor)
    plan.problems.update(problems)
    for index in sorted(parsed):
        try:
            _plan(plan, index, parsed[index])
        except AppError as error:
            plan.problems[index] = error
    seconds = settings.bulk_deadline_seconds
    deadline = None if seconds is None else time.monotonic() + seconds
    failed = bulk.commit(plan.units, owner_id if shared else None, settings.write_workers, deadline)
    for index in sorted(failed):  # in order: an operation alone sees the ones before it
        plan.results.pop(index, None)
        try:
            plan.results[index] = _alone(settings, owner_id, parsed[index], failed[index], shared, actor)
        except AppError as error:
            plan.problems[index] = error
    _sweep(plan, failed)
    return _answer(plan, len(operations))


def _alone(settings: Settings, owner_id: str, op: Any, label: str, shared: bool, actor: str) -> tuple[int, str | None]:
    """An operation whose condition failed at commit (another request wrote the contact or the
    email meanwhile), sent again on its own as the single route would (one item's calls):
    its status is then the one it would have had alone: 200, 204, 404, 409 or 412."""
    if label == bulk.UNAVAILABLE:
        raise ServiceUnavailable("The database was too busy to apply this operation; send it again.")
    if isinstance(op, UpdateOp):
        services.patch_contact(settings, owner_id, op.id, op.contact, op.version, actor=actor)
        return 200, op.id
    if isinstance(op, DeleteOp):
        services.delete_contact(owner_id, op.id, op.version, actor=actor)  # sweeps the contact's notes too
        return 204, op.id
    if isinstance(op, CreateOp):
        created = services.create_contact(settings, owner_id, op.contact, actor=actor, shared=shared)  # 409 if taken
        return 201, created.id
    key = store.contact_email_key(_email(op))
    if label == "email" and key is not None:
        raise store.email_taken(owner_id, key)
    raise Conflict(CHANGED)


def _sweep(plan: _Plan, failed: dict[int, str]) -> None:
    """The notes of the contacts deleted (and of those already gone: a DELETE that was cut short
    left them), as DELETE /contacts/{id} sweeps them; a sweep cut short is that operation's 503."""
    for index, contact_id in plan.swept.items():
        if index in failed:
            continue  # sent again alone, which swept
        try:
            store.delete_notes_of_contact(plan.owner_id, contact_id)
        except ServiceUnavailable:
            plan.results.pop(index, None)
            plan.problems[index] = ServiceUnavailable(
                f"The contact is deleted but not all its notes were removed: DELETE /contacts/{contact_id} finishes it."
            )


def _read(settings: Settings, owner_id: str, parsed: dict[int, Any], actor: str) -> _Plan:
    """Who holds the emails the operations name, and the contacts they name (two BatchGetItems at most)."""
    keys = [k for op in parsed.values() if (k := store.contact_email_key(_email(op)))]
    ids = [op.id for op in parsed.values() if isinstance(op, UpdateOp | DeleteOp) and is_valid_id(op.id)]
    holders = bulk.claims(owner_id, keys) if keys else {}
    found = bulk.contacts(owner_id, ids) if ids else {}
    planned = {cid: _Planned(int(c.version), c.email_key, bool(c.has_notes)) for cid, c in found.items()}
    return _Plan(owner_id, settings, utc_now(), actor, holders, planned)


def _email(op: Any) -> str | None:
    if isinstance(op, CreateOp | UpsertOp | UpdateOp):
        return op.contact.email
    return None


def _plan(plan: _Plan, index: int, op: Any) -> None:
    if isinstance(op, CreateOp):
        _create(plan, index, op.contact.model_dump())
    elif isinstance(op, UpsertOp):
        _upsert(plan, index, op)
    elif isinstance(op, UpdateOp):
        values = op.contact.model_dump(include=op.contact.model_fields_set)
        if not values:
            raise ValidationFailed("Send at least one field to change.")
        _change(plan, index, op.id, op.version, values)
    else:
        _delete(plan, index, op)


def _taken(plan: _Plan, key: str | None, contact_id: str | None = None) -> None:
    holder = plan.holders.get(key or "")
    if holder is not None and holder != contact_id:
        raise Conflict(store.EMAIL_TAKEN, extra={"existing_id": holder})


def _create(plan: _Plan, index: int, values: dict[str, Any]) -> None:
    key = store.contact_email_key(values.get("email"))
    _taken(plan, key)
    unit = bulk.Unit(index)
    contact = services.new_contact(plan.settings, plan.owner_id, values, plan.now, email_key=key, updated_by=plan.actor)
    contact_id = contact.contact_id
    unit.put("contact", contact, Contact.contact_id.does_not_exist())
    if key is not None:
        unit.put("email", ContactEmail(plan.owner_id, key, contact_id=contact_id), ContactEmail.email.does_not_exist())
        plan.holders[key] = contact_id
    plan.units.append(unit)
    plan.contacts[contact_id] = _Planned(1, key, False)
    plan.results[index] = (201, contact_id)


def _upsert(plan: _Plan, index: int, op: UpsertOp) -> None:
    key = store.contact_email_key(op.contact.email)
    if key is None:
        raise ValidationFailed(
            "An upsert finds its contact by email: send one.",
            errors=[{"pointer": f"#/operations/{index}/contact/email", "detail": "required", "type": "missing"}],
        )
    holder = plan.holders.get(key)
    if holder is None:
        _create(plan, index, op.contact.model_dump())
        return
    # The contact with this email, replaced as PUT would (absent fields removed); read or not,
    # it is written only while it still holds the email.
    unit = bulk.Unit(index)
    changes = services.contact_changes(plan.settings, op.contact.model_dump(), plan.actor, plan.now)
    actions = store.set_or_remove(Contact, changes)
    unit.update("contact", Contact(plan.owner_id, holder), [*actions, Contact.version.add(1)], Contact.email_key == key)
    plan.units.append(unit)
    if holder in plan.contacts:
        plan.contacts[holder].version += 1
    plan.results[index] = (200, holder)


def _current(plan: _Plan, contact_id: str, version: int | None) -> _Planned:
    current = plan.contacts.get(contact_id) if is_valid_id(contact_id) else None
    if current is None or current.deleted:
        raise NotFound("Contact not found.")
    if version is not None and version != current.version:
        raise PreconditionFailed("The contact has changed since the version you sent.")
    return current


def _change(plan: _Plan, index: int, contact_id: str, version: int | None, values: dict[str, Any]) -> None:
    current = _current(plan, contact_id, version)
    unit = bulk.Unit(index)
    changes = services.contact_changes(plan.settings, values, plan.actor, plan.now)
    if "email" in values:
        key = store.contact_email_key(values["email"])
        _taken(plan, key, contact_id)
        if current.email_key != key:
            if current.email_key is not None:
                old = ContactEmail(plan.owner_id, current.email_key)
                unit.delete("old_email", old, ContactEmail.contact_id == contact_id)
                plan.holders.pop(current.email_key, None)
            if key is not None:
                claim = ContactEmail(plan.owner_id, key, contact_id=contact_id)
                unit.put("email", claim, ContactEmail.email.does_not_exist())
                plan.holders[key] = contact_id
            changes["email_key"] = key
            current.email_key = key
    actions = store.set_or_remove(Contact, changes)
    condition = Contact.version == current.version
    unit.update("contact", Contact(plan.owner_id, contact_id), [*actions, Contact.version.add(1)], condition)
    plan.units.append(unit)
    current.version += 1
    plan.results[index] = (200, contact_id)


def _delete(plan: _Plan, index: int, op: DeleteOp) -> None:
    try:
        current = _current(plan, op.id, op.version)
    except NotFound:
        if is_valid_id(op.id) and op.id not in plan.contacts:
            plan.swept[index] = op.id  # notes a DELETE cut short left behind, as the single route sweeps them
        raise
    unit = bulk.Unit(index)
    notes_as_read = Contact.has_notes.exists() if current.has_notes else Contact.has_notes.does_not_exist()
    condition = (Contact.version == current.version) & notes_as_read
    unit.delete("contact", Contact(plan.owner_id, op.id), condition)
    unit.put("mark", store.deletion_mark(plan.owner_id, "contact", op.id, plan.actor, plan.now), None)
    if current.email_key is not None:
        unit.delete("old_email", ContactEmail(plan.owner_id, current.email_key), ContactEmail.contact_id == op.id)
        plan.holders.pop(current.email_key, None)
    plan.units.append(unit)
    current.deleted = True
    if current.has_notes:
        plan.swept[index] = op.id
    plan.results[index] = (204, op.id)


def _answer(plan: _Plan, count: int) -> tuple[int, BatchOut]:
    results = []
    for index in range(count):
        if index in plan.problems:
            error = plan.problems[index]
            problem = problem_body(error, None)
            problem.pop("request_id", None)
            results.append(BatchResult(index=index, status=error.status, problem=Problem.model_validate(problem)))
        else:
            status, contact_id = plan.results[index]
            results.append(BatchResult(index=index, status=status, id=contact_id))
    return (207 if plan.problems else 200), BatchOut(results=results)
