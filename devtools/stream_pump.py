"""The local stand-in for Lambda's DynamoDB Streams event source mapping.

Reads the notes table's stream from the embedded store, shard by shard, and calls the very
handler the normalizer Lambda runs with the same event shape. Like the mapping in
infra/template.json it honours the batch size and `batchItemFailures`: a batch is retried
from its lowest failed record, at most MAX_RETRIES times, then that record goes to the
dead-letter file (as bisect-on-error would isolate it on AWS) and the shard moves on.

It outlives the store: while the store is down (or the table missing) it backs off
exponentially up to BACKOFF_MAX_SECONDS, logging one line per change of state rather than
one per poll. After any failure, and every REDESCRIBE_SECONDS, it describes the table
again: a recreated table has a new stream, which it reads from TRIM_HORIZON; on the same
stream it resumes after the last record it delivered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("contact_notes.stream_pump")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class NoStream(RuntimeError):
    """The store gave no stream to read: the table has none (yet), or its answer (a store
    shutting down can answer with anything) did not describe one."""


class StreamPump:
    """Poll a table's stream in a background thread and feed batches to a handler."""

    MAX_RETRIES = 3
    BACKOFF_MAX_SECONDS = 5.0
    REDESCRIBE_SECONDS = 10.0

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
        consumer: str = "",
    ) -> None:
        self._handler = handler
        # Several pumps may read one stream (as several mappings do on AWS) and share one
        # dead-letter file: each entry names the consumer that gave up on the record.
        self._consumer = consumer
        self._name = f"stream pump ({consumer})" if consumer else "stream pump"  # in its log lines
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._table_name = table_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        # botocore 1.44 otherwise builds account-based endpoints that bypass endpoint_url routing.
        # One attempt and short timeouts: the pump's own backoff does the waiting.
        config = Config(
            account_id_endpoint_mode="disabled",
            connect_timeout=1,
            read_timeout=5,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        self._dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)
        self._streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, region_name=region, config=config)
        self._iterators: dict[str, str | None] = {}  # per shard; None once a closed shard is read
        self._delivered: dict[str, str] = {}  # per shard: the last sequence number delivered
        self._stream_arn = ""
        self._described_at = 0.0
        self._shards_changed = True  # list the shards on the next poll
        self._trouble = ""  # the state being backed off from ("" while all is well)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # ---- reading the stream --------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                busy = self._poll_once()
            except Exception as exc:  # keep pumping: a dev server must not die with its store
                backoff = min(max(2 * backoff, self._poll_seconds), self.BACKOFF_MAX_SECONDS)
                self._failed(exc, backoff)
                self._stop.wait(backoff)
                continue
            backoff = 0.0
            if not busy:
                self._stop.wait(self._poll_seconds)

    def _poll_once(self) -> bool:
        """One round: find the stream and its shards if needed, deliver what is new; busy?

        The shards are listed again only with the table (after a failure, and every
        REDESCRIBE_SECONDS) or once a shard has closed (its children are to be read next), not
        on every poll: with one pump per event source mapping (four under `make run`) a
        DescribeStream per poll was half of an idle stack's load on its store.
        """
        if not self._stream_arn or time.monotonic() - self._described_at > self.REDESCRIBE_SECONDS:
            self._attach()
            self._shards_changed = True
        if self._shards_changed:
            self._discover_shards()
            self._shards_changed = False
        busy = self._poll_shards()
        if self._trouble:
            logger.warning("%s: reading %s again", self._name, self._stream_arn)
            self._trouble = ""
        return busy

    def _attach(self) -> None:
        """Describe the table; a new stream (the table was recreated) is read from its start."""
        table = self._dynamodb.describe_table(TableName=self._table_name).get("Table") or {}
        arn = table.get("LatestStreamArn") or ""
        if not arn:
            raise NoStream(f"table {self._table_name} has no stream")
        if arn != self._stream_arn:
            if self._stream_arn:
                logger.warning("%s: %s has a new stream; reading it from the start", self._name, self._table_name)
            self._iterators.clear()
            self._delivered.clear()
            self._stream_arn = arn
        self._described_at = time.monotonic()

    def _failed(self, exc: Exception, backoff: float) -> None:
        """Forget the iterators (they may be expired or belong to a store that restarted)
        and describe the table again next time; log once per kind of failure."""
        self._iterators.clear()
        self._described_at = 0.0
        state, description = _describe(exc)
        if state != self._trouble:
            logger.warning("%s: %s; backing off (up to %.0f s)", self._name, description, self.BACKOFF_MAX_SECONDS)
            if not isinstance(exc, (BotoCoreError, ClientError, NoStream)):
                logger.exception("%s: unexpected failure", self._name)  # a bug, not the store: show where
            self._trouble = state

    def _discover_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self._stream_arn).get("StreamDescription")
        if description is None:
            raise NoStream(f"no description of {self._stream_arn}")
        shards = description.get("Shards", [])
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._iterator(shard_id)

    def _iterator(self, shard_id: str) -> str:
        """Just after the last record delivered from this shard, or its oldest record."""
        position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        if shard_id in self._delivered:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._delivered[shard_id]}
        answer = self._streams.get_shard_iterator(StreamArn=self._stream_arn, ShardId=shard_id, **position)
        if "ShardIterator" not in answer:
            raise NoStream(f"no iterator for shard {shard_id}")
        return str(answer["ShardIterator"])

    def _poll_shards(self) -> bool:
        busy = False
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:  # a closed shard, fully read
                continue
            try:
                page = self._streams.get_records(ShardIterator=iterator, Limit=self._batch_size)
            except ClientError as exc:
                if _code(exc) not in {"ExpiredIteratorException", "TrimmedDataAccessException"}:
                    raise
                # Expired: resume after the last delivered record. Trimmed: those records are gone.
                if _code(exc) == "TrimmedDataAccessException":
                    self._delivered.pop(shard_id, None)
                self._iterators[shard_id] = self._iterator(shard_id)
                continue
            records = [lambda_shape(r, self._stream_arn) for r in page.get("Records", [])]
            if records:
                self.deliver(records)
                self._delivered[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                busy = True
            # Advance only once the batch is delivered (or dead-lettered): nothing is skipped.
            self._iterators[shard_id] = page.get("NextShardIterator")
            if self._iterators[shard_id] is None:
                self._shards_changed = True  # closed: its children take over
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
            logger.exception("%s: the handler raised: the whole batch counts as failed", self._name)
            return {r["dynamodb"]["SequenceNumber"] for r in records}
        return {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}

    def _dead_letter(self, record: dict[str, Any]) -> None:
        self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": datetime.now().astimezone().isoformat(), "retries": self.MAX_RETRIES, "record": record}
        if self._consumer:
            entry["consumer"] = self._consumer
        with self._dead_letters.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry, default=str) + "\n")
        logger.warning("%s: record %s sent to %s", self._name, record["dynamodb"]["SequenceNumber"], self._dead_letters)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> tuple[str, str]:
    """The state a failure puts the pump in (unreachable store, an error code, other), and a line for it.

    Refused, timed out or dropped are one state: a store going down may show all three.
    """
    if isinstance(exc, BotoCoreError):
        return "unavailable", f"store unavailable ({type(exc).__name__})"
    if isinstance(exc, ClientError):
        return _code(exc), f"store answered {_code(exc)}"
    return type(exc).__name__, f"{type(exc).__name__}: {exc}"


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
