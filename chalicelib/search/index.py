"""The search index's stream consumer: contacts' and notes' changes become postings.

Two Lambda functions (index_contacts, index_notes) run this module, one per stream
(NEW_AND_OLD_IMAGES). Per record: one GetItem (the item's document: what is indexed for it
now), BatchWriteItem for only the postings that differ from the new words (25 per call;
items DynamoDB leaves unprocessed are sent again here, with jittered exponential backoff,
and the record fails once chalicelib.store.UNPROCESSED_RESENDS are spent), then one PutItem for the
document, last, so that a failure part-way leaves the document as it was and a retry
redoes the difference (puts and deletes of postings are idempotent).

PynamoDB's own batch_write is not used for the postings: it resends unprocessed items
without any wait, and only max_retry_attempts - 1 times, which with this project's
MAX_RETRY_ATTEMPTS = 1 is never (a throttled table failed the whole record at once).

Ordering: the item's version decides. A document records the version indexed and whether
the item is gone; a record whose (version, gone) is not after it is a replay or an older
record delivered late, and changes nothing. A deleted item keeps its document as a
tombstone until TTL, past the streams' 24-hour retention, so no replay can bring it back.

Notes are indexed from their normalized text: a pending note's record is skipped (the
index keeps the note's previous text until the normalizer's write-back, whose record
carries the next version). A note the normalizer gave up on is indexed as stored.

Failures are reported per record in `batchItemFailures`, like the normalizer's, and an
item's records after its failed one are reported with it, unapplied (in_item_order); the
event source mappings (infra/template.json) bisect, retry a bounded number of times, then
send the record to a dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pynamodb.exceptions import DoesNotExist

from chalicelib import observability
from chalicelib.models import PENDING, SearchEntry
from chalicelib.search import keys, text
from chalicelib.store import batch_write
from chalicelib.stream_batches import process_records

logger = logging.getLogger("contact_notes.search_index")

TOMBSTONE_LIFETIME = timedelta(days=2)  # past the streams' 24-hour retention


@dataclass(frozen=True)
class Change:
    """What a record asks of the index: an item's words at a version, or (words None) its removal."""

    workspace_id: str
    kind: str  # "contact" | "note"
    item_id: str
    version: int
    words: dict[str, str] | None
    created: str

    @property
    def order(self) -> tuple[int, bool]:
        return self.version, self.words is None


def change_of(record: DynamoDBRecord) -> Change | None:
    """The change a contacts or notes record asks for, or None: nothing to do (a pending note)."""
    if record.dynamodb is None:
        raise ValueError("a stream record without its change")
    removed = record.event_name == DynamoDBRecordEventName.REMOVE
    image: dict[str, Any] = (record.dynamodb.old_image if removed else record.dynamodb.new_image) or {}
    key_names = set(record.dynamodb.keys or {})
    kind = "note" if "note_id" in key_names else "contact" if "contact_id" in key_names else ""
    if not kind:
        raise ValueError("a record of neither a contact nor a note")
    if kind == "note" and not removed and image.get("processing_status") == PENDING:
        return None
    version = image.get("version")
    if not isinstance(version, (int, Decimal)):
        raise TypeError("version is not a number")
    found: dict[str, str] | None = None
    if not removed:
        if kind == "contact":
            found = text.contact_words(image)
        else:
            found = text.note_words(str(image.get("body") or ""), [str(tag) for tag in image.get("tags") or []])
    return Change(
        workspace_id=str(image["owner_id"]),
        kind=kind,
        item_id=str(image[f"{kind}_id"]),
        version=int(version),
        words=found,
        created=str(image.get("created_at") or ""),
    )


def indexed(change: Change) -> SearchEntry | None:
    try:
        return SearchEntry.get(
            keys.doc_bucket(change.workspace_id), keys.doc_key(change.kind, change.item_id), consistent_read=True
        )
    except DoesNotExist:
        return None


def apply(change: Change) -> int:
    """Bring the index to a change; the number of postings written or deleted (0: stale or same)."""
    doc = indexed(change)
    if doc is not None and (int(doc.version or 0), bool(doc.deleted)) >= change.order:
        observability.count("SearchRecordsSkipped")
        return 0
    before: dict[str, str] = json.loads(doc.words) if doc is not None and doc.words and not doc.deleted else {}
    after = change.words or {}
    puts = {word: codes for word, codes in after.items() if before.get(word) != codes}
    gone = [word for word in before if word not in after]
    batch_write(
        SearchEntry.Meta.table_name,
        [{"PutRequest": {"Item": _posting(change, word, codes).serialize()}} for word, codes in puts.items()]
        + [{"DeleteRequest": {"Key": _posting(change, word).serialize()}} for word in gone],
    )
    document = SearchEntry(
        keys.doc_bucket(change.workspace_id), keys.doc_key(change.kind, change.item_id), version=change.version
    )
    if change.words is None:
        document.deleted = True
        document.expires_at = TOMBSTONE_LIFETIME  # PynamoDB: a timedelta is from now
    else:
        document.words = json.dumps(after, ensure_ascii=False, separators=(",", ":"))
    document.save()
    observability.count("SearchItemsIndexed")
    return len(puts) + len(gone)


def _posting(change: Change, word: str, codes: str | None = None) -> SearchEntry:
    """A posting of the changed item; without codes, only its key (what a delete names)."""
    bucket, key = keys.posting_bucket(change.workspace_id, word), keys.posting_key(word, change.kind, change.item_id)
    if codes is None:
        return SearchEntry(bucket, key)
    return SearchEntry(bucket, key, fields=codes, created=change.created)


def handle_record(record: DynamoDBRecord) -> None:
    change = change_of(record)
    if change is not None:
        written = apply(change)
        logger.info("indexed", extra={"item_id": change.item_id, "kind": change.kind, "postings_written": written})


class HeldBack(RuntimeError):
    """A record of an item whose earlier record in the batch failed: reported, not applied."""


def _item_of(record: DynamoDBRecord) -> str:
    return json.dumps(record.dynamodb.keys if record.dynamodb else None, sort_keys=True, default=str)


def in_item_order(steps: Callable[[DynamoDBRecord], None] = handle_record) -> Callable[[DynamoDBRecord], None]:
    """A record handler for one batch that holds back an item's later records once one failed.

    A failed record may have written part of its postings but not its document (written
    last); a later record of the same item would take its difference from that stale
    document and leave those postings behind for good. The mapping redelivers from the
    first failed record anyway, so the later ones are reported failed unapplied and run
    after it, in order. Other items' records go on.
    """
    failed: set[str] = set()

    def handle(record: DynamoDBRecord) -> None:
        item = _item_of(record)
        if item in failed:
            raise HeldBack("an earlier record of this item failed in this batch")
        try:
            steps(record)
        except Exception:
            failed.add(item)
            raise

    return handle


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point for the search stream Lambdas: returns {"batchItemFailures": [...]}."""
    return process_records(event, context, in_item_order())
