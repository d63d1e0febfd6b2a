"""The notes stream handler: a thin loop over records around a pure function and one write.

Powertools' BatchProcessor runs each record and reports the ones that raised as
`batchItemFailures` (the event source mapping in infra/ has ReportBatchItemFailures on,
bisects, retries a bounded number of times, then sends the record to the dead-letter queue).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pynamodb.exceptions import PynamoDBException

from chalicelib import observability, store
from chalicelib.ids import utc_now
from chalicelib.models import PENDING
from chalicelib.normalize import extract_tags, normalize_text
from chalicelib.stream_batches import process_records

logger = logging.getLogger("contact_notes.normalizer")

# A note that fails this many times for a reason that will not go away is marked failed
# (and its record succeeds), before Lambda's own retries would send it to the dead letters.
MAX_ATTEMPTS = 3
PERMANENT_ERRORS = {"ValidationException"}  # e.g. the item would exceed 400 KB


class PermanentFailure(Exception):
    """Processing this note failed in a way a retry may not fix; counted against MAX_ATTEMPTS."""


@dataclass(frozen=True)
class PendingNote:
    owner_id: str
    note_id: str
    version: int
    text: str


def pending_note(record: DynamoDBRecord) -> PendingNote | None:
    """The note a record asks us to process, or None when there is nothing to do.

    Nothing to do: a removal, or an image that is not pending (our own write-back, a
    failed mark). A record we cannot read at all raises, and so is reported and retried.
    """
    if record.event_name == DynamoDBRecordEventName.REMOVE:
        return None
    image: dict[str, Any] = record.dynamodb.new_image if record.dynamodb else {}
    if image.get("processing_status") != PENDING:
        return None
    if _only_attempts_changed(record, image):
        return None  # our own failed-attempt count: the record that caused it is being retried
    version = image["version"]
    if not isinstance(version, (int, Decimal)):
        raise TypeError("version is not a number")
    text = image.get("original_body") or image["body"]
    return PendingNote(str(image["owner_id"]), str(image["note_id"]), int(version), str(text))


def _only_attempts_changed(record: DynamoDBRecord, new: dict[str, Any]) -> bool:
    if record.event_name != DynamoDBRecordEventName.MODIFY or record.dynamodb is None:
        return False
    old: dict[str, Any] = record.dynamodb.old_image or {}
    return old.get("processing_status") == PENDING and old.get("version") == new.get("version")


def process(note: PendingNote) -> None:
    """Normalize and write back once; a stale record (the note moved on) changes nothing."""
    body = normalize_text(note.text)
    tags = extract_tags(body)
    try:
        written = store.save_normalized(
            note.owner_id, note.note_id, note.version, body=body, original=note.text, tags=tags, at=utc_now()
        )
    except PynamoDBException as exc:
        if exc.cause_response_code in PERMANENT_ERRORS:
            raise PermanentFailure(f"the normalized note could not be stored ({exc.cause_response_code})") from exc
        raise
    logger.info("note %s", "normalized" if written else "skipped (stale)", extra={"note_id": note.note_id})
    observability.count("NotesNormalized" if written else "StaleRecordsSkipped")


def handle_record(record: DynamoDBRecord) -> None:
    note = pending_note(record)
    if note is None:
        return
    try:
        process(note)
    except PermanentFailure as failure:
        attempts = store.count_failed_attempt(note.owner_id, note.note_id, note.version)
        if attempts is None:
            return  # the note moved on (edited or deleted): nothing left to do for this record
        if attempts >= MAX_ATTEMPTS:
            store.mark_failed(note.owner_id, note.note_id, note.version, reason=str(failure), at=utc_now())
            logger.warning("note marked failed", extra={"note_id": note.note_id, "reason": str(failure)})
            observability.count("NotesFailed")
            return
        raise


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point for the stream Lambda: returns {"batchItemFailures": [...]}."""
    return process_records(event, context, handle_record)
