"""The workspaces stream consumer: a deleted shared workspace's data is swept.

DELETE /workspaces/{id} removes the workspace item and its memberships within the request;
its contacts and notes (any number) are removed here, from the REMOVE record of the
workspace item: a keys-only Query per page of each partition (owner_id = the workspace id)
and BatchWriteItem deletes, 25 per call. No Scan, nothing unbounded on the request path.

Idempotent (deleting what is gone changes nothing), so a replayed or retried record is
harmless. A record that fails (throttling left items unprocessed, an outage) is reported in
`batchItemFailures`; the event source mapping (infra/template.json) bisects, retries a
bounded number of times, then sends it to its dead-letter queue. Nothing can be created in
the workspace after its item is gone (creations check it in their transaction: see
chalicelib.store._check_workspace), so one sweep leaves no orphans.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from chalicelib import observability
from chalicelib.models import Contact, ContactEmail, Membership, Note, WebhookEndpoint
from chalicelib.stream_batches import process_records
from chalicelib.workspaces import store

logger = logging.getLogger("contact_notes.workspace_purge")


def deleted_workspace(record: DynamoDBRecord) -> str | None:
    """The id of the shared workspace a record says was deleted, or None: nothing to do.

    A personal workspace is never swept, whatever a record says (its data is its user's).
    """
    if record.event_name != DynamoDBRecordEventName.REMOVE or record.dynamodb is None:
        return None
    old: dict[str, Any] = record.dynamodb.old_image or {}
    keys: dict[str, Any] = record.dynamodb.keys or {}
    workspace_id = keys.get("workspace_id") or old.get("workspace_id")
    if not isinstance(workspace_id, str) or not workspace_id:
        raise ValueError("a workspace record without a workspace_id")
    if old.get("personal") is not False:
        return None  # personal (or an image that does not say): keep the data
    return workspace_id


def purge(workspace_id: str) -> dict[str, int]:
    """Delete a workspace's contacts, notes, webhook endpoints and any memberships left; counts per kind."""
    counts = {
        "contacts": store.purge_partition(Contact, workspace_id),
        "notes": store.purge_partition(Note, workspace_id),
        "contact_emails": store.purge_partition(ContactEmail, workspace_id),
        "memberships": store.purge_partition(Membership, workspace_id),
        # Its webhook endpoints (with their signing secrets); their deliveries and the live
        # connections end by TTL, and the audit log's entries stay until their retention ends.
        "webhooks": store.purge_partition(WebhookEndpoint, workspace_id),
    }
    logger.info("workspace purged", extra={"workspace_id": workspace_id, **counts})
    return counts


def handle_record(record: DynamoDBRecord) -> None:
    workspace_id = deleted_workspace(record)
    if workspace_id is not None:
        purge(workspace_id)
        observability.count("WorkspacesPurged")


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Entry point for the stream Lambda: returns {"batchItemFailures": [...]}."""
    return process_records(event, context, handle_record)
