"""The audit log: the change-event sink of the contacts' and notes' streams, and its reads.

Writing (stream consumers index_contacts and index_notes, after the search index): one
PutItem per event, conditional on the event id not being there yet, so a redelivered record
writes nothing and the audit table's stream (the outbox of webhooks and live updates) carries
each event once. A REMOVE record costs one GetItem more (who deleted it).

Reading (GET /audit, GET /contacts/{id}/history): one Query each, newest first, on the
table or the one index that keys the most selective filter given (resource, then actor, then
the time range alone); the other filters are applied by DynamoDB within that page (a page may
then hold fewer items than asked, even none, with a cursor to go on) and the answer names them
in `filtered_within_page`.
"""

from __future__ import annotations

import json
import logging
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib import observability
from chalicelib.events import derive
from chalicelib.models import AuditEntry, DeletionMark
from chalicelib.store import condition_failed, dynamodb_errors, get_or_none

logger = logging.getLogger("contact_notes.audit")


def _mark(workspace_id: str, kind: str, item_id: str) -> DeletionMark | None:
    return get_or_none(DeletionMark, workspace_id, f"{kind}#{item_id}")


def record(stream_record: DynamoDBRecord, retention_days: int) -> dict[str, Any] | None:
    """Derive the record's event and append it to the audit log (once); the event or None."""
    event = derive.event_of(stream_record, _mark)
    if event is None:
        return None
    entry = entry_of(event, retention_days)
    try:
        entry.save(condition=AuditEntry.event_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        observability.count("EventsAlreadyRecorded")
        logger.info("event already recorded", extra={"event_id": event["id"]})
        return event
    observability.count("EventsRecorded")
    logger.info("event recorded", extra={"event_id": event["id"], "type": event["type"]})
    return event


def entry_of(event: dict[str, Any], retention_days: int) -> AuditEntry:
    """The audit log's item for an event: the event as JSON, its index keys, its expiry."""
    workspace, occurred = event["workspace_id"], datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    return AuditEntry(
        workspace,
        event["id"],
        event=derive.encoded(event),
        type=event["type"],
        resource_key=f"{workspace}#{event['resource_id']}",
        actor_key=f"{workspace}#{event['actor_id']}",
        contact_key=f"{workspace}#{event['contact_id']}",
        expires_at=occurred + timedelta(days=retention_days),
    )


@dataclass(frozen=True)
class AuditFilter:
    resource_id: str | None = None
    actor_id: str | None = None
    contact_id: str | None = None  # a contact and its notes (history)
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class AuditPage:
    events: list[dict[str, Any]]
    last_event_id: str | None  # where the next page starts (exclusive), None at the end
    filtered_within_page: list[str] = field(default_factory=list)


# The filters an index can key, most selective first: (filter, index, its hash key attribute).
_KEYED = (
    ("contact_id", "by_contact", "contact_key"),
    ("resource_id", "by_resource", "resource_key"),
    ("actor_id", "by_actor", "actor_key"),
)


def query(workspace_id: str, wanted: AuditFilter, limit: int, after: str | None) -> AuditPage:
    """One Query: up to `limit` entries read, newest first, after the event id `after`."""
    given = [(name, index, attr, f"{workspace_id}#{getattr(wanted, name)}") for name, index, attr in _KEYED
             if getattr(wanted, name) is not None]  # fmt: skip
    index, hash_attr, hash_key = (given[0][1], given[0][2], given[0][3]) if given else (None, "", workspace_id)
    filters: list[Condition] = [getattr(AuditEntry, attr) == value for _, _, attr, value in given[1:]]
    within = [name for name, _, _, _ in given[1:]]
    if wanted.types:
        filters.append(AuditEntry.type.is_in(*wanted.types))
        within.append("type")
    low = derive.time_bound(wanted.since, last=False) if wanted.since else derive.EVENT_PREFIX
    high = derive.time_bound(wanted.until, last=True) if wanted.until else derive.EVENT_PREFIX + "~"
    if low > high:  # until before since: an empty window (DynamoDB would refuse the range)
        return AuditPage([], None, within)
    start = None
    if after is not None:
        start = {"workspace_id": {"S": workspace_id}, "event_id": {"S": after}}
        if index is not None:
            start[hash_attr] = {"S": hash_key}
    with dynamodb_errors():
        out = AuditEntry._get_connection().query(
            hash_key,
            range_key_condition=AuditEntry.event_id.between(low, high),
            filter_condition=reduce(operator.and_, filters) if filters else None,
            index_name=index,
            limit=limit,
            scan_index_forward=False,
            exclusive_start_key=start,
        )
    events = [json.loads(item["event"]["S"]) for item in out.get("Items", [])]
    last = out.get("LastEvaluatedKey")
    return AuditPage(events, last["event_id"]["S"] if last else None, within)
