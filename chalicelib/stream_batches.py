"""What every stream consumer's entry point does: its records through Powertools' BatchProcessor.

Each record is handled on its own; the ones that raised come back as `batchItemFailures`,
which the event source mappings (infra/template.json: ReportBatchItemFailures, bisect on
error, bounded retries, a dead-letter queue) read. Failures are counted as a metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from chalicelib import observability


def process_records(
    event: dict[str, Any], context: Any, handle_record: Callable[[DynamoDBRecord], None]
) -> dict[str, Any]:
    """Run `handle_record` on each record; returns {"batchItemFailures": [...]}."""
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    result: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    )
    failures: list[Any] = result.get("batchItemFailures") or []
    if failures:
        observability.count("StreamRecordsFailed", len(failures))
    return result
