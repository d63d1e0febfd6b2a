"""Business rules: users, contacts and notes. No HTTP here, and no DynamoDB but through store."""

from __future__ import annotations

from typing import Any

from pynamodb.expressions.update import Action

from chalicelib import auth, ratelimit, store
from chalicelib.config import Settings
from chalicelib.errors import Forbidden, InvalidGrant, NotFound, Unauthorized, ValidationFailed
from chalicelib.ids import is_valid_id, new_id, utc_now
from chalicelib.models import PENDING, USER_PREFIX, Contact, Membership, Note, UserRecord, Workspace, contact_note_key
from chalicelib.pagination import decode_cursor, encode_cursor
from chalicelib.roles import OWNER
from chalicelib.schemas import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    CurrentUserOut,
    NoteCreate,
    NoteIn,
    NoteOut,
    NotePage,
    PageQuery,
    RegisterIn,
    TokenOut,
    UserOut,
)
from chalicelib.sessions import service as sessions
from chalicelib.workspaces.access import role_in

# ---- users ---------------------------------------------------------------------------


def user_out(user: UserRecord) -> UserOut:
    return UserOut(
        id=user.user_id,
        username=user.username or "",
        email=user.email or "",
        created_at=user.created_at or "",
    )


def register(data: RegisterIn) -> UserOut:
    now = utc_now()
    user_id = new_id()
    user = UserRecord(
        USER_PREFIX + user_id,
        user_id=user_id,
        username=data.username,
        email=data.email,
        password_hash=auth.hash_password(data.password),
        created_at=now,
        updated_at=now,
        version=1,
    )
    store.create_user(user, personal_workspace(user_id, data.username, now))
    return user_out(user)


PERSONAL_NAME = "Personal"


def personal_workspace(user_id: str, username: str, now: str) -> tuple[Workspace, Membership]:
    """A new user's personal workspace (its id is the user's) and owner membership, written
    with the user. Users registered before workspaces have neither: where they are read, the
    same shapes are made up on the spot (chalicelib.workspaces.service)."""
    workspace = Workspace(
        user_id, name=PERSONAL_NAME, personal=True, created_by=user_id, created_at=now, updated_at=now, version=1
    )
    membership = Membership(user_id, user_id, role=OWNER, username=username, created_at=now, updated_at=now)
    return workspace, membership


def login(settings: Settings, username: str, password: str, workspace_id: str | None = None) -> TokenOut:
    """Exchange a password for an access token; unknown user and wrong password look alike.

    A locked account is refused before the password is even checked (429, no oracle);
    failures count per username, known or not, and a success clears them. The token acts
    in `workspace_id` (default: the personal workspace) with the user's role there.
    """
    user_id, seen = ratelimit.find_login(username)  # one read: the username's claim and the lockout
    user = store.get_user(user_id) if user_id else None
    if not auth.verify_password(password, user.password_hash if user else None) or user is None:
        ratelimit.record_login_failure(username, seen, settings)
        raise InvalidGrant("Incorrect username or password.")
    ratelimit.record_login_success(username, seen)
    workspace, role = workspace_role(user.user_id, workspace_id)
    token, ttl = auth.issue_token(settings, user.user_id, user.tier or auth.DEFAULT_TIER, workspace, role)
    refresh_token = sessions.open_family(settings, user.user_id, workspace)  # a sign-in starts a family
    return TokenOut(access_token=token, expires_in=ttl, refresh_token=refresh_token)


NOT_YOUR_WORKSPACE = "You are not a member of that workspace."


def workspace_role(user_id: str, workspace_id: str | None) -> tuple[str, str]:
    """The workspace a token will act in and the user's role there; Forbidden when the user is
    not a member. One answer for a workspace that does not exist, one the user is not in and a
    malformed id, so that it tells nothing about other people's workspaces."""
    workspace = workspace_id or user_id
    role = role_in(user_id, workspace) if is_valid_id(workspace) else None
    if role is None:  # OAuth 2.0's error for a scope not granted, as the refresh grant answers
        raise Forbidden(NOT_YOUR_WORKSPACE, extra={"error": "invalid_scope"})
    return workspace, role


def current_user(user_id: str, workspace_id: str | None = None, role: str = OWNER) -> CurrentUserOut:
    """The user, with the workspace and role the token acts with (as the token says)."""
    user = store.get_user(user_id)
    if user is None:
        raise Unauthorized("The account behind this token no longer exists.")
    return CurrentUserOut(**user_out(user).model_dump(), workspace_id=workspace_id or user_id, role=role)


# ---- contacts ------------------------------------------------------------------------


def phone_e164(phone: str | None, region: str) -> str | None:
    """E.164 form of a phone number that parses and is valid; None otherwise (kept as given)."""
    if not phone:
        return None
    import phonenumbers  # on first use: its metadata costs every cold start otherwise

    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.contact_id,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        phone=contact.phone,
        phone_e164=contact.phone_e164,
        company=contact.company,
        title=contact.title,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
        version=int(contact.version),
    )


def _require(valid_id: str, what: str) -> None:
    """An id that is not a ULID cannot exist: answer 404 without asking DynamoDB."""
    if not is_valid_id(valid_id):
        raise NotFound(f"{what} not found.")


def new_contact(settings: Settings, owner_id: str, values: dict[str, Any], now: str, **extra: Any) -> Contact:
    """A contact about to be created from ContactIn's fields (phone_e164 follows phone)."""
    return Contact(
        owner_id,
        new_id(),
        **values,
        phone_e164=phone_e164(values.get("phone"), settings.default_phone_region),
        created_at=now,
        updated_at=now,
        version=1,
        **extra,
    )


def create_contact(
    settings: Settings, owner_id: str, data: ContactIn, *, actor: str, shared: bool = False
) -> ContactOut:
    """`shared`: the workspace is not the caller's personal one, so its existence is checked.
    `actor`: the user making the change (every write records it: chalicelib.events)."""
    contact = new_contact(settings, owner_id, data.model_dump(), utc_now(), updated_by=actor)
    store.put_new_contact(contact, shared=shared)
    return contact_out(contact)


def _contact_or_404(owner_id: str, contact_id: str) -> Contact:
    _require(contact_id, "Contact")
    contact = store.get_contact(owner_id, contact_id)
    if contact is None:
        raise NotFound("Contact not found.")
    return contact


def get_contact(owner_id: str, contact_id: str) -> ContactOut:
    return contact_out(_contact_or_404(owner_id, contact_id))


def contact_changes(settings: Settings, values: dict[str, Any], actor: str, now: str | None = None) -> dict[str, Any]:
    """The attributes a change sets (None: removes); phone_e164 follows phone."""
    changes = {**values, "updated_at": now or utc_now(), "updated_by": actor}
    if "phone" in values:
        changes["phone_e164"] = phone_e164(values["phone"], settings.default_phone_region)
    return changes


def replace_contact(
    settings: Settings, owner_id: str, contact_id: str, data: ContactIn, if_match: int | None, *, actor: str
) -> ContactOut:
    _require(contact_id, "Contact")
    changes = contact_changes(settings, data.model_dump(), actor)
    return contact_out(store.update_contact(owner_id, contact_id, changes, if_match, new_email=data.email))


def patch_contact(
    settings: Settings, owner_id: str, contact_id: str, data: ContactPatch, if_match: int | None, *, actor: str
) -> ContactOut:
    _require(contact_id, "Contact")
    values = data.model_dump(include=data.model_fields_set)
    if not values:
        raise ValidationFailed("Send at least one field to change.")
    changes = contact_changes(settings, values, actor)
    new_email = values.get("email", store.UNCHANGED)
    return contact_out(store.update_contact(owner_id, contact_id, changes, if_match, new_email=new_email))


def delete_contact(owner_id: str, contact_id: str, if_match: int | None, *, actor: str) -> None:
    """Delete the contact, then its notes, before answering.

    The contact goes first so that no new note can be attached while the notes are swept
    (note creation is conditional on the contact). A contact that never had a note needs no
    sweep. If the sweep is interrupted, repeating the DELETE finishes it: a missing contact
    still has its leftover notes swept.
    """
    _require(contact_id, "Contact")
    try:
        had_notes = store.delete_contact(owner_id, contact_id, if_match, actor)
    except NotFound:
        store.delete_notes_of_contact(owner_id, contact_id)
        raise
    if had_notes:
        store.delete_notes_of_contact(owner_id, contact_id)


def _page_bounds(settings: Settings, owner_id: str, scope: str, query: PageQuery) -> str | None:
    if query.cursor is None:
        return None
    return decode_cursor(settings.signing_secret, owner_id, scope, query.cursor)


def _next_cursor(settings: Settings, owner_id: str, scope: str, ids: list[str], limit: int) -> str | None:
    """A cursor only when a further item exists (we fetched limit + 1)."""
    if len(ids) <= limit:
        return None
    return encode_cursor(settings.signing_secret, owner_id, scope, ids[limit - 1])


def list_contacts(settings: Settings, owner_id: str, query: PageQuery) -> ContactPage:
    after = _page_bounds(settings, owner_id, "contacts", query)
    found = store.query_contacts(owner_id, query.limit + 1, after)
    cursor = _next_cursor(settings, owner_id, "contacts", [c.contact_id for c in found], query.limit)
    return ContactPage(items=[contact_out(c) for c in found[: query.limit]], next_cursor=cursor)


# ---- notes ---------------------------------------------------------------------------


def note_out(note: Note) -> NoteOut:
    return NoteOut(
        id=note.note_id,
        contact_id=note.contact_id,
        body=note.body,
        original_body=note.original_body if note.original_body is not None else note.body,
        tags=list(note.tags or []),
        processing_status=note.processing_status,
        processed_at=note.processed_at,
        normalizer_version=note.normalizer_version,
        failure_reason=note.failure_reason,
        created_at=note.created_at,
        updated_at=note.updated_at,
        version=int(note.version),
    )


def new_note(owner_id: str, contact_id: str, body: str, now: str, actor: str) -> Note:
    """A note about to be created, pending its normalization."""
    note_id = new_id()
    return Note(
        owner_id,
        note_id,
        contact_id=contact_id,
        contact_note=contact_note_key(contact_id, note_id),
        body=body,
        processing_status=PENDING,
        created_at=now,
        updated_at=now,
        version=1,
        updated_by=actor,
    )


def create_note(owner_id: str, contact_id: str, data: NoteIn, *, actor: str, shared: bool = False) -> NoteOut:
    _require(contact_id, "Contact")
    note = new_note(owner_id, contact_id, data.body, utc_now(), actor)
    store.put_new_note(note, shared=shared)
    return note_out(note)


def create_note_flat(owner_id: str, data: NoteCreate, *, actor: str, shared: bool = False) -> NoteOut:
    return create_note(
        owner_id, data.contact_id, data, actor=actor, shared=shared
    )  # a NoteCreate is a NoteIn, already validated


def get_note(owner_id: str, note_id: str) -> NoteOut:
    _require(note_id, "Note")
    note = store.get_note(owner_id, note_id)
    if note is None:
        raise NotFound("Note not found.")
    return note_out(note)


def update_note(owner_id: str, note_id: str, data: NoteIn, if_match: int | None, *, actor: str) -> NoteOut:
    """PUT and PATCH alike: a note's only writable field is its body, which goes back to pending."""
    _require(note_id, "Note")
    actions: list[Action] = [
        Note.body.set(data.body),
        Note.processing_status.set(PENDING),
        Note.updated_at.set(utc_now()),
        Note.updated_by.set(actor),
        Note.original_body.remove(),
        Note.tags.remove(),
        Note.processed_at.remove(),
        Note.normalizer_version.remove(),
        Note.failure_reason.remove(),
        Note.processing_attempts.remove(),
    ]
    return note_out(store.update_note(owner_id, note_id, actions, if_match))


def delete_note(owner_id: str, note_id: str, if_match: int | None, *, actor: str) -> None:
    _require(note_id, "Note")
    store.delete_note(owner_id, note_id, if_match, actor)


def list_notes(settings: Settings, owner_id: str, contact_id: str, query: PageQuery) -> NotePage:
    """Two reads: the contact (404 when missing or foreign), then one Query."""
    _contact_or_404(owner_id, contact_id)
    scope = "notes:" + contact_id
    after = _page_bounds(settings, owner_id, scope, query)
    found = store.query_notes(owner_id, contact_id, query.limit + 1, after)
    cursor = _next_cursor(settings, owner_id, scope, [n.note_id for n in found], query.limit)
    return NotePage(items=[note_out(n) for n in found[: query.limit]], next_cursor=cursor)
