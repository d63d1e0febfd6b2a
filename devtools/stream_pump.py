"""The local stand-in for Lambda's DynamoDB Streams event source mapping.

Reads the notes table's stream from the embedded store, shard by shard, and calls the very
handler the normalizer Lambda runs with the same event shape. Like the mapping in
infra/template.json it honours the batch size and `batchItemFailures`: a batch is retried
from its lowest failed record, at most MAX_RETRIES times, then that record goes to the
dead-letter file (as bisect-on-error would isolate it on AWS) and the shard moves on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

logger = logging.getLogger("contact_notes.stream_pump")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class StreamPump:
    """Poll a table's stream in a background thread and feed batches to a handler."""

    MAX_RETRIES = 3

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        table_name: str,
        handler: Handler,
        dead_letters: Path,
        batch_size: int = 100,
        poll_seconds: float = 0.2,
    ) -> None:
        self._handler = handler
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._table_name = table_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-pump", daemon=True)
        # botocore 1.44 otherwise builds account-based endpoints that bypass endpoint_url routing.
        config = Config(account_id_endpoint_mode="disabled", retries={"mode": "standard"})
        self._dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)
        self._streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=region, config=config)
        self._iterators: dict[str, str | None] = {}
        self._stream_arn = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # ---- reading the stream --------------------------------------------------------------

    def _run(self) -> None:
        self._stream_arn = self._dynamodb.describe_table(TableName=self._table_name)["Table"]["LatestStreamArn"]
        while not self._stop.is_set():
            try:
                self._discover_shards(self._stream_arn)
                busy = self._poll_shards()
            except Exception:  # keep pumping: a dev server must not die on one bad poll
                logger.exception("stream poll failed")
                busy = False
            if not busy:
                self._stop.wait(self._poll_seconds)

    def _discover_shards(self, stream_arn: str) -> None:
        shards = self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]

    def _poll_shards(self) -> bool:
        busy = False
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:  # a closed shard, fully read
                continue
            page = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
            records = [lambda_shape(r, self._stream_arn) for r in page.get("Records", [])]
            if records:
                self.deliver(records)
                busy = True
            # Advance only once the batch is delivered (or dead-lettered): nothing is skipped.
            self._iterators[shard_id] = page.get("NextShardIterator")
        return busy

    # ---- delivering like the event source mapping ------------------------------------------------

    def deliver(self, records: list[dict[str, Any]]) -> None:
        """Deliver one batch with Lambda's partial-failure semantics."""
        retries: dict[str, int] = {}  # per record: each gets its own MAX_RETRIES
        while records:
            failed = self._invoke(records)
            if not failed:
                break
            first = min(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] in failed)
            records = records[first:]  # Lambda checkpoints before the lowest failed record
            sequence = records[0]["dynamodb"]["SequenceNumber"]
            retries[sequence] = retries.get(sequence, 0) + 1
            if retries[sequence] > self.MAX_RETRIES:
                self._dead_letter(records[0])
                records = records[1:]

    def _invoke(self, records: list[dict[str, Any]]) -> set[str]:
        try:
            result = self._handler({"Records": records})
        except Exception:
            logger.exception("stream handler raised: the whole batch counts as failed")
            return {r["dynamodb"]["SequenceNumber"] for r in records}
        return {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}

    def _dead_letter(self, record: dict[str, Any]) -> None:
        self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": datetime.now().astimezone().isoformat(), "retries": self.MAX_RETRIES, "record": record}
        with self._dead_letters.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry, default=str) + "\n")
        logger.warning("record %s sent to %s", record["dynamodb"]["SequenceNumber"], self._dead_letters)


def lambda_shape(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: epoch seconds, plus the event source ARN."""
    shaped = dict(record)
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    shaped["dynamodb"] = change
    shaped["eventSourceARN"] = stream_arn
    shaped.setdefault("eventSource", "aws:dynamodb")
    return shaped
