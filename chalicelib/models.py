"""PynamoDB models: the only code that knows the tables' shapes.

Every contact and note is keyed by (owner_id, id), so no request can even name another
owner's item. Table names, endpoint and region come from settings via `bind_models`,
called on first use rather than at import.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import TableError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from chalicelib.config import Settings

USER_PREFIX = "USER#"
USERNAME_PREFIX = "USERNAME#"
EMAIL_PREFIX = "EMAIL#"


# How long a request can wait for DynamoDB. API Gateway gives up after 29 s and the API
# Lambda's timeout (.chalice/config.json, 25 s) must come first, so the store's share is bounded:
#   one call      <= attempts x (connect + read) + botocore's pause between attempts
#                  = 2 x (0.5 + 1.0) + 1.0 (standard mode: random, up to 1 s after a
#                    throttling answer, up to 25 ms after any other failure)          =  4 s
#   one request   <= 5 calls (what sign-in into a shared workspace and deleting a contact
#                  with up to 25 notes make; sign-in into the personal one makes 4;
#                  see bench/calls.py) x 4 s                                          = 20 s
# Not a hard bound: a contact with more notes takes one BatchWriteItem per 25 and one Query
# per page, and the limiter or a transaction may try again on a conflict. Only a store that
# answers each call just in time on its last attempt gets near it. A store that is down
# fails the request's first call: a 503 within 4 s (black-holed: about 2 s; refused: at
# once). DynamoDB answers in milliseconds, so one retry still covers a dropped keep-alive
# connection or a lone slow answer. tests/test_store_outage.py checks this
# arithmetic on the client the models really use.
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
MAX_RETRY_ATTEMPTS = 1  # after the first attempt


class _BaseMeta:
    table_name = ""
    region = "us-east-1"
    host: str | None = None
    billing_mode = "PAY_PER_REQUEST"
    connect_timeout_seconds = CONNECT_TIMEOUT_SECONDS
    read_timeout_seconds = READ_TIMEOUT_SECONDS
    max_retry_attempts = MAX_RETRY_ATTEMPTS


class UserRecord(Model):
    """A user (pk USER#id) or a uniqueness claim (pk USERNAME#name / EMAIL#address).

    One table holds both so that registration is one transaction: the user item and both
    claims are written together, each conditional on not existing.
    """

    class Meta(_BaseMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    username = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute(null=True)
    # The hash the last password change replaced (one, overwritten by the next change): a
    # retry of that change, which still sends the old password as current, is recognised.
    previous_password_hash = UnicodeAttribute(null=True)
    tier = UnicodeAttribute(null=True)  # usage-plan tier; absent means "default"
    # Refresh-token families started at or before this time (ISO 8601, like created_at) are
    # void: a password change signs out every session with one write, no Query of sessions.
    sessions_valid_after = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)


class Contact(Model):
    """A contact. Its stream (NEW_AND_OLD_IMAGES) feeds the search index (chalicelib.search)."""

    class Meta(_BaseMeta):
        stream_view_type = "NEW_AND_OLD_IMAGES"

    owner_id = UnicodeAttribute(hash_key=True)
    contact_id = UnicodeAttribute(range_key=True)
    first_name = UnicodeAttribute()
    last_name = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    phone_e164 = UnicodeAttribute(null=True)
    company = UnicodeAttribute(null=True)
    title = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    # Set by the first note's transaction and never cleared: a contact without it has no
    # notes, so deleting it needs no sweep (one call instead of two). This holds because no
    # version that created notes without setting it was ever deployed; a change like it on
    # live data would need the mark backfilled from the notes index before relying on it.
    has_notes = BooleanAttribute(null=True)
    # The lower-cased email this contact holds a ContactEmail claim on (absent: none). A
    # change of email is conditional on it, so that the claims move in the same transaction.
    email_key = UnicodeAttribute(null=True)
    # Who made the change this version records (a user id): the actor of its change event
    # (chalicelib.events). Absent on items written before change events existed.
    updated_by = UnicodeAttribute(null=True)


class ContactEmail(Model):
    """A workspace's claim on an email (lower-cased) for one contact: one contact per email,
    enforced by the claim's own put condition in the contact's transaction, never by a read."""

    class Meta(_BaseMeta):
        pass

    owner_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    contact_id = UnicodeAttribute()


class NotesByContact(LocalSecondaryIndex["Note"]):
    """A contact's notes, newest first, with strongly consistent reads (an LSI, not a GSI)."""

    class Meta:
        index_name = "by_contact"
        projection = AllProjection()  # a list page is one Query, bodies included

    owner_id = UnicodeAttribute(hash_key=True)
    contact_note = UnicodeAttribute(range_key=True)


PENDING, PROCESSED, FAILED = "pending", "processed", "failed"


class Note(Model):
    """A note. Its stream (NEW_AND_OLD_IMAGES) feeds the normalizer.

    `body` is what the note shows: the text as sent until the normalizer replaces it.
    `original_body` is stored only once it differs from `body` (a pending note's body *is*
    the original), which keeps a note of 100,000 four-byte characters inside DynamoDB's
    400 KB item limit while it waits.
    """

    class Meta(_BaseMeta):
        stream_view_type = "NEW_AND_OLD_IMAGES"

    owner_id = UnicodeAttribute(hash_key=True)
    note_id = UnicodeAttribute(range_key=True)
    contact_id = UnicodeAttribute()
    # "<contact_id>#<note_id>": the LSI sort key that groups a contact's notes by time.
    contact_note = UnicodeAttribute()
    body = UnicodeAttribute()
    original_body = UnicodeAttribute(null=True)
    tags = ListAttribute(of=UnicodeAttribute, null=True)
    processing_status = UnicodeAttribute(default=PENDING)
    processed_at = UnicodeAttribute(null=True)
    normalizer_version = UnicodeAttribute(null=True)
    failure_reason = UnicodeAttribute(null=True)
    processing_attempts = NumberAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    updated_by = UnicodeAttribute(null=True)  # as on a contact: the actor of the change

    by_contact = NotesByContact()


class RateLimitRecord(Model):
    """One limiter item per caller (user#id, ip#addr) or login (login#name); expired by TTL.

    Written only with conditional UpdateItems (chalicelib.store), never read first on the
    request path. Times are epoch microseconds.
    """

    class Meta(_BaseMeta):
        pass

    key = UnicodeAttribute(hash_key=True)
    tat = NumberAttribute(null=True)  # GCRA theoretical arrival time
    blocked_until = NumberAttribute(null=True)  # set while a caller is told to back off
    penalty = NumberAttribute(null=True)  # the last back-off given, doubled on each early retry
    failures = NumberAttribute(null=True)  # failed logins in a row
    locked_until = NumberAttribute(null=True)  # login lock
    expires_at = TTLAttribute(null=True)


class Workspace(Model):
    """A workspace: the owner of contacts and notes (their `owner_id`). A user's personal
    workspace has the user's id, so data stored before workspaces existed needs no move."""

    class Meta(_BaseMeta):
        stream_view_type = "NEW_AND_OLD_IMAGES"

    workspace_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    personal = BooleanAttribute(default=False)
    created_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    # How many members are owners: every change of an owner's membership updates it in the
    # same transaction, conditional on it staying at least 1 (the last owner cannot leave).
    # Absent on personal workspaces, whose only member is their owner.
    owners = NumberAttribute(null=True)


class MembershipsByUser(GlobalSecondaryIndex["Membership"]):
    """A user's memberships (GET /workspaces): one Query."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    workspace_id = UnicodeAttribute(range_key=True)


class Membership(Model):
    """A user's role in a workspace (owner, admin, editor, viewer: chalicelib.roles)."""

    class Meta(_BaseMeta):
        pass

    workspace_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute()
    # The member's username, copied when the membership is made (usernames never change), so
    # that a page of members is one Query.
    username = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()

    by_user = MembershipsByUser()


FAMILY_PREFIX = "F#"
TOKEN_PREFIX = "T#"  # noqa: S105 (a key prefix, not a secret)
CURRENT, ROTATED = "current", "rotated"


class SessionRecord(Model):
    """Refresh-token sessions (chalicelib.sessions): items expire by TTL after inactivity.

    F#<family id>: one sign-in (a token family): its user, workspace, revoked mark, last use.
    T#<sha-256 of a token>: one refresh token ever issued: its family and whether it is the
    family's current one or was rotated (presenting a rotated one revokes the family).
    """

    class Meta(_BaseMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    expires_at = TTLAttribute(null=True)
    # token items
    family_id = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)  # CURRENT or ROTATED
    # family items
    user_id = UnicodeAttribute(null=True)
    workspace_id = UnicodeAttribute(null=True)
    revoked = BooleanAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)  # the family's last use (sign-in, refresh, sign-out)


class SearchEntry(Model):
    """The search index (chalicelib.search), kept by the contacts' and notes' streams.

    Posting: bucket "<workspace id>#<first character of the word>", key "<word>|<kind>|<item
    id>", one per distinct word of a contact or note: `fields` (the codes of the fields
    holding the word, chalicelib.search.text.FIELD_NAMES) and `created` (the item's
    created_at: newest first). A term is one Query: bucket of its first character, key
    beginning with it.
    Document: bucket "<workspace id>#doc", key "<kind>|<item id>": the `version` indexed
    and `words` (JSON {word: codes}) the postings written for it, so that a change writes
    only the difference and a replayed or older record is recognised and skipped. A deleted
    item's document stays as a tombstone (`deleted`) until `expires_at`, past the streams'
    24-hour retention, so a replay cannot bring it back.
    """

    class Meta(_BaseMeta):
        pass

    bucket = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    # postings
    fields = UnicodeAttribute(null=True)
    created = UnicodeAttribute(null=True)
    # documents
    version = NumberAttribute(null=True)
    words = UnicodeAttribute(null=True)
    deleted = BooleanAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class IdempotencyRecord(Model):
    """One Idempotency-Key's request and answer (chalicelib.idempotency), written and read only by
    Powertools' DynamoDB persistence layer, in its own attribute names; expired by TTL
    (`expiration`, epoch seconds) once its time is up (24 hours by default)."""

    class Meta(_BaseMeta):
        pass

    id = UnicodeAttribute(hash_key=True)
    expiration = TTLAttribute(null=True)
    status = UnicodeAttribute(null=True)  # INPROGRESS or COMPLETED
    in_progress_expiration = NumberAttribute(null=True)  # epoch milliseconds
    data = UnicodeAttribute(null=True)  # the stored answer (JSON)
    validation = UnicodeAttribute(null=True)  # a hash of the request the key was first sent with


class DeletionMark(Model):
    """Who deleted a contact or note: written in the delete's own transaction, read by the
    change-event consumer when the item's REMOVE record arrives (a removed item's old image
    names only its last editor). Key: the workspace and "<kind>#<item id>"; a contact's mark
    also names the deleter of the notes swept with it. Expires after the streams' 24 hours."""

    class Meta(_BaseMeta):
        pass

    owner_id = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    actor_id = UnicodeAttribute()
    deleted_at = UnicodeAttribute()
    expires_at = TTLAttribute()


# The audit log's indexes: "<workspace id>#<id>" and the event id (time order), whole entries.
class AuditByResource(GlobalSecondaryIndex["AuditEntry"]):
    class Meta:
        index_name = "by_resource"
        projection = AllProjection()

    resource_key = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)


class AuditByActor(GlobalSecondaryIndex["AuditEntry"]):
    class Meta:
        index_name = "by_actor"
        projection = AllProjection()

    actor_key = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)


class AuditByContact(GlobalSecondaryIndex["AuditEntry"]):
    class Meta:
        index_name = "by_contact"
        projection = AllProjection()

    contact_key = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)


class AuditEntry(Model):
    """One change event (chalicelib.events), per workspace, newest last by `event_id` (a ULID
    whose time is the change's). Append-only: written once by the change-event consumer with a
    put conditional on not existing; the deployed API role may only read it (infra/template.json).
    Its stream (NEW_IMAGE) is the outbox the webhooks and live updates read. Expires by TTL
    after AUDIT_RETENTION_DAYS."""

    class Meta(_BaseMeta):
        stream_view_type = "NEW_IMAGE"

    workspace_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute()  # the event, JSON text, exactly as the API answers it
    type = UnicodeAttribute()
    resource_key = UnicodeAttribute()  # "<workspace>#<resource id>"
    actor_key = UnicodeAttribute()  # "<workspace>#<actor id>"
    contact_key = UnicodeAttribute()  # "<workspace>#<contact id>": a contact and its notes
    expires_at = TTLAttribute()

    by_resource = AuditByResource()
    by_actor = AuditByActor()
    by_contact = AuditByContact()


class LiveConnection(Model):
    """A live-updates WebSocket connection (chalicelib.live.connections), as two items written
    and deleted together: ("W#<workspace id>", connection id), which the fan-out finds with one
    Query per workspace, and ("C#<connection id>", "C#"), which names the workspace for
    $disconnect (API Gateway gives it only the connection id). Both expire by TTL no later than
    the token that opened the connection, or API Gateway's 2-hour limit."""

    class Meta(_BaseMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    workspace_id = UnicodeAttribute()
    connection_id = UnicodeAttribute()
    user_id = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    connected_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class WebhookEndpoint(Model):
    """A workspace's webhook endpoints (chalicelib.webhooks); one item per workspace with the id
    COUNTER_ID holds only `endpoints`, their number, kept in the same transactions."""

    class Meta(_BaseMeta):
        pass

    workspace_id = UnicodeAttribute(hash_key=True)
    webhook_id = UnicodeAttribute(range_key=True)
    url = UnicodeAttribute(null=True)
    events = ListAttribute(of=UnicodeAttribute, null=True)
    description = UnicodeAttribute(null=True)
    secret = UnicodeAttribute(null=True)  # the signing secret (whsec_...): shown once, never logged
    enabled = BooleanAttribute(null=True)
    disabled_reason = UnicodeAttribute(null=True)
    disabled_at = UnicodeAttribute(null=True)
    failures = NumberAttribute(null=True)  # deliveries in a row that failed for good
    created_by = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    endpoints = NumberAttribute(null=True)  # the counter item's


class WebhookDelivery(Model):
    """One event's delivery to one endpoint (chalicelib.webhooks.delivery), keyed by
    "<workspace id>#<webhook id>" and the event id (which sorts by time); expired by TTL."""

    class Meta(_BaseMeta):
        pass

    endpoint = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    event_type = UnicodeAttribute()
    payload = BinaryAttribute(legacy_encoding=False)  # the body sent, zlib-compressed
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    last_status_code = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    next_attempt_at = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)  # epoch seconds: an attempt in flight
    delivered_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


def contact_note_key(contact_id: str, note_id: str = "") -> str:
    """A note's by_contact sort key; without a note id, the prefix all its contact's notes share."""
    return f"{contact_id}#{note_id}"


def query_contact_notes(owner_id: str, contact_id: str, **options: Any) -> ResultIterator[Note]:
    """A contact's notes through the by_contact index (strongly consistent), one Query per page."""
    prefix = Note.contact_note.startswith(contact_note_key(contact_id))
    return Note.by_contact.query(owner_id, prefix, consistent_read=True, **options)


# Each model, the setting naming its table, and its resource in infra/template.json.
TABLES: dict[type[Model], tuple[str, str]] = {
    UserRecord: ("users_table", "UsersTable"),
    Contact: ("contacts_table", "ContactsTable"),
    ContactEmail: ("contact_emails_table", "ContactEmailsTable"),
    Note: ("notes_table", "NotesTable"),
    RateLimitRecord: ("rate_limits_table", "RateLimitsTable"),
    Workspace: ("workspaces_table", "WorkspacesTable"),
    Membership: ("memberships_table", "MembershipsTable"),
    SessionRecord: ("sessions_table", "SessionsTable"),
    SearchEntry: ("search_table", "SearchTable"),
    IdempotencyRecord: ("idempotency_table", "IdempotencyTable"),
    DeletionMark: ("deletion_marks_table", "DeletionMarksTable"),
    AuditEntry: ("audit_table", "AuditTable"),
    LiveConnection: ("connections_table", "ConnectionsTable"),
    WebhookEndpoint: ("webhooks_table", "WebhooksTable"),
    WebhookDelivery: ("webhook_deliveries_table", "WebhookDeliveriesTable"),
}
ALL_MODELS: tuple[type[Model], ...] = tuple(TABLES)


def bind_models(settings: Settings) -> None:
    """Point every model at the tables, region and endpoint the settings name."""
    names = {model: getattr(settings, setting) for model, (setting, _) in TABLES.items()}
    for model, table_name in names.items():
        meta: Any = model.Meta
        target = (table_name, settings.aws_region, settings.dynamodb_endpoint, settings.dynamodb_read_timeout_seconds)
        if (meta.table_name, meta.region, meta.host, meta.read_timeout_seconds) == target:
            continue  # keep the connection (and its client) when nothing changed
        meta.table_name, meta.region, meta.host, meta.read_timeout_seconds = target
        model._connection = None  # rebuilt with the new Meta
    _share_one_client()


def dynamodb_client() -> Any:
    """The one botocore DynamoDB client every model uses (once the models are bound)."""
    return ALL_MODELS[0]._get_connection().connection.client


def aws_session() -> Any:
    """The botocore session that client is made from: other AWS clients made from it share
    its loaded endpoint data and credentials (a second session costs a cold start about 35 ms)."""
    return ALL_MODELS[0]._get_connection().connection.session


def _share_one_client() -> None:
    """All models on one botocore client (PynamoDB makes a session and a client per model).

    A client costs 80-100 ms to make, most of it loading DynamoDB's service model, and a
    cold container's first list of a contact's notes would otherwise make three of them
    (limiter, contact, notes). PynamoDB's Connection is built for many tables, so every
    model's TableConnection is pointed at the first one's. No network call: the tables'
    descriptions come from the models' own schemas.
    """
    shared = ALL_MODELS[0]._get_connection().connection
    for model in ALL_MODELS[1:]:
        table = model._get_connection()
        if table.connection is not shared:
            shared.add_meta_table(table.get_meta_table())
            table.connection = shared


def create_tables(settings: Settings) -> list[str]:
    """Create any missing table (idempotent); return the names it created."""
    bind_models(settings)
    return [model.Meta.table_name for model in ALL_MODELS if _create_table(model)]


def _create_table(model: type[Model]) -> bool:
    """CreateTable as PynamoDB's `Model.create_table` builds it, without its calls around it.

    `Model.create_table(wait=True)` asks DescribeTable whether the table exists, asks again
    inside, and once more after creating it: 22 ms a table on moto, where `make run` and
    every test make all of them. Here "already exists" is CreateTable's own answer, and the
    wait is only for a table that did not come back ACTIVE (DynamoDB: CREATING for seconds;
    moto and DynamoDB Local: ACTIVE at once): under 3 ms. False when the table existed.
    """
    meta: Any = model.Meta
    schema = model._get_schema()
    options: dict[str, Any] = {
        "attribute_definitions": schema["attribute_definitions"],
        "key_schema": schema["key_schema"],
        "global_secondary_indexes": schema["global_secondary_indexes"],
        "local_secondary_indexes": schema["local_secondary_indexes"],
        "billing_mode": meta.billing_mode,
    }
    if hasattr(meta, "stream_view_type"):
        options["stream_specification"] = {"stream_enabled": True, "stream_view_type": meta.stream_view_type}
    try:
        created = model._get_connection().create_table(**options)
    except TableError as exc:
        if exc.cause_response_code == "ResourceInUseException":
            return False
        raise
    if (created or {}).get("TableDescription", {}).get("TableStatus") != "ACTIVE":
        model.create_table(wait=True)  # PynamoDB's own wait (it finds the table and polls)
    else:
        model.update_ttl(ignore_update_ttl_errors=False)
    return True
