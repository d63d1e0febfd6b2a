"""The local stand-in for Lambda's SQS event source mapping: the webhook delivery queue's worker.

Long-polls the queue on the embedded store's endpoint (moto's server serves SQS beside DynamoDB)
and calls the very handler the delivery Lambda runs, with the same event shape (Records of
messageId, receiptHandle, body, attributes ...). As the mapping does, it deletes the messages
the handler did not report in `batchItemFailures`; a reported one shows again once its visibility
timeout ends, and after MAX_RECEIVES receives goes to the dead-letter file (the deployed queue's
redrive policy). Message delays (DelaySeconds, up to 15 minutes) are SQS's own: moto honours them.
While the queue cannot be reached it backs off, one log line per change of state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger("contact_notes.queue_worker")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class QueueWorker:
    """Poll one queue in a background thread and feed batches to a handler."""

    MAX_RECEIVES = 5
    BACKOFF_MAX_SECONDS = 5.0
    VISIBILITY_SECONDS = 60

    def __init__(
        self, *, sqs: Any, queue_url: str, queue_arn: str, handler: Handler, dead_letters: Path, consumer: str
    ) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._arn = queue_arn
        self._handler = handler
        self._dead_letters = dead_letters
        self._consumer = consumer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"queue worker ({consumer})", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the queue is unreachable or the store restarting: try again later
                if not backoff:
                    logger.warning("queue worker (%s): cannot read the queue (%s); retrying", self._consumer, exc)
                backoff = min(self.BACKOFF_MAX_SECONDS, (backoff or 0.1) * 2)
                self._stop.wait(backoff)
                continue
            if backoff:
                logger.warning("queue worker (%s): reading the queue again", self._consumer)
                backoff = 0.0

    def poll_once(self) -> int:
        """One receive (waiting up to a second for messages) and its batch handled; the number received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=self.VISIBILITY_SECONDS,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        fresh = [m for m in messages if not self._given_up(m)]
        if fresh:
            answer = self._handler({"Records": [self._record(m) for m in fresh]})
            failed = {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures") or []}
            for message in fresh:
                if message["MessageId"] not in failed:
                    self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _given_up(self, message: dict[str, Any]) -> bool:
        """A message received too often goes to the dead-letter file, as the redrive policy would."""
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if receives <= self.MAX_RECEIVES:
            return False
        self._dead_letters.parent.mkdir(parents=True, exist_ok=True)
        entry = {"consumer": self._consumer, "at": datetime.now(UTC).isoformat(), "message": message["Body"]}
        with self._dead_letters.open("a") as sink:
            sink.write(json.dumps(entry) + "\n")
        logger.warning("queue worker (%s): message %s dead-lettered", self._consumer, message["MessageId"])
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        now = str(int(time.time() * 1000))
        attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": now, "ApproximateFirstReceiveTimestamp": now}
        attributes.update(message.get("Attributes") or {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 (SQS's own checksum)
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._arn.split(":")[3],
        }
