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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib import observability
from chalicelib.events import derive
from chalicelib.models import AuditEntry, DeletionMark
from chalicelib.store import condition_failed, dynamodb_errors

logger = logging.getLogger("contact_notes.audit")


def _mark(workspace_id: str, kind: str, item_id: str) -> DeletionMark | None:
    try:
        return DeletionMark.get(workspace_id, f"{kind}#{item_id}", consistent_read=True)
    except DeletionMark.DoesNotExist:
        return None


def record(stream_record: DynamoDBRecord, retention_days: int) -> dict[str, Any] | None:
    """Derive the record's event and append it to the audit log (once); the event or None."""
    event = derive.event_of(stream_record, _mark)
    if event is None:
        return None
    workspace, occurred = event["workspace_id"], datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    entry = AuditEntry(
        workspace,
        event["id"],
        event=derive.encoded(event),
        type=event["type"],
        resource_key=f"{workspace}#{event['resource_id']}",
        actor_key=f"{workspace}#{event['actor_id']}",
        contact_key=f"{workspace}#{event['contact_id']}",
        expires_at=occurred + timedelta(days=retention_days),
    )
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


def query(workspace_id: str, wanted: AuditFilter, limit: int, after: str | None) -> AuditPage:
    """One Query: up to `limit` entries read, newest first, after the event id `after`."""
    index, hash_key, keyed = None, workspace_id, ""
    if wanted.contact_id is not None:
        index, hash_key, keyed = "by_contact", f"{workspace_id}#{wanted.contact_id}", "contact_id"
    elif wanted.resource_id is not None:
        index, hash_key, keyed = "by_resource", f"{workspace_id}#{wanted.resource_id}", "resource_id"
    elif wanted.actor_id is not None:
        index, hash_key, keyed = "by_actor", f"{workspace_id}#{wanted.actor_id}", "actor_id"
    low = derive.time_bound(wanted.since, last=False) if wanted.since else derive.EVENT_PREFIX
    high = derive.time_bound(wanted.until, last=True) if wanted.until else derive.EVENT_PREFIX + "~"
    filters: list[Condition] = []
    within: list[str] = []
    if wanted.resource_id is not None and keyed != "resource_id":
        filters.append(AuditEntry.resource_key == f"{workspace_id}#{wanted.resource_id}")
        within.append("resource_id")
    if wanted.actor_id is not None and keyed != "actor_id":
        filters.append(AuditEntry.actor_key == f"{workspace_id}#{wanted.actor_id}")
        within.append("actor_id")
    if wanted.types:
        filters.append(AuditEntry.type.is_in(*wanted.types))
        within.append("type")
    condition: Condition | None = None
    for part in filters:
        condition = part if condition is None else condition & part
    start = None
    if after is not None:
        start = {"workspace_id": {"S": workspace_id}, "event_id": {"S": after}}
        if index is not None:
            start[_INDEX_HASH[index]] = {"S": hash_key}
    with dynamodb_errors():
        out = AuditEntry._get_connection().query(
            hash_key,
            range_key_condition=AuditEntry.event_id.between(low, high),
            filter_condition=condition,
            index_name=index,
            limit=limit,
            scan_index_forward=False,
            exclusive_start_key=start,
        )
    events = [json.loads(item["event"]["S"]) for item in out.get("Items", [])]
    last = out.get("LastEvaluatedKey")
    return AuditPage(events, last["event_id"]["S"] if last else None, within)


_INDEX_HASH = {"by_contact": "contact_key", "by_resource": "resource_key", "by_actor": "actor_key"}
