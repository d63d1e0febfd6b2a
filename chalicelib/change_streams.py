"""The contacts' and notes' stream consumers (index_contacts, index_notes): each record becomes
a change event in the audit log (chalicelib.events.audit), then goes to the search index
(chalicelib.search.index).

One consumer per table for both, not one per concern: DynamoDB Streams throttles a shard read
by more than two consumers, and the notes' stream already has the normalizer. Both steps are
idempotent (the index by version, the audit log by event id), so a record that failed in
either is simply run again whole; an item's later records in the batch wait for it (in order).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from chalicelib.events import audit
from chalicelib.runtime import settings
from chalicelib.search import index
from chalicelib.stream_batches import process_records


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point of both Lambdas: returns {"batchItemFailures": [...]}."""
    retention_days = settings().audit_retention_days

    def both(record: DynamoDBRecord) -> None:
        audit.record(record, retention_days)  # first: a record the index cannot take still has its event
        index.handle_record(record)

    return process_records(event, context, index.in_item_order(both))
