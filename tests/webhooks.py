"""Helpers for the webhook tests: a real HTTP receiver on loopback, audit stream records carrying
events (as Lambda delivers them), and the delivery queue drained through the Lambda interface
(as the event source mapping does), over moto."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalice.test import Client

from chalicelib import runtime
from chalicelib.ids import new_id
from chalicelib.webhooks import queue

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:contact-notes-webhook-deliveries"


# ---- a receiver -----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from `statuses` in turn
    (the last one once they run out), sleeping `delay` seconds first when set."""

    statuses: list[int] = field(default_factory=lambda: [204])
    delay: float = 0.0
    drip: float = 0.0  # send the answer's header lines one at a time, this many seconds apart
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@contextmanager
def receiving(statuses: list[int] | None = None, delay: float = 0.0, drip: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or [204]), delay=delay, drip=drip)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answer()
            if receiver.delay:
                time.sleep(receiver.delay)  # the receiver is slow: the sender's timeout is under test
            if receiver.drip:
                self._drip(status)
                return
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up first

        def _drip(self, status: int) -> None:
            """Each line in time for a per-read timeout, the whole answer never in time."""
            try:
                self.wfile.write(f"HTTP/1.1 {status} OK\r\n".encode())
                for n in range(8):
                    self.wfile.write(f"X-Drip-{n}: .\r\n".encode())
                    self.wfile.flush()
                    time.sleep(receiver.drip)  # the receiver's own pace: the sender's deadline is under test
                self.wfile.write(b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass  # the sender gave up first

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# ---- events and audit records -------------------------------------------------------------


def make_event(workspace_id: str, actor_id: str, event_type: str = "contact.created", **extra: Any) -> dict[str, Any]:
    """An event as the contract has it."""
    contact_id = new_id()
    occurred = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    event: dict[str, Any] = {
        "id": "evt_" + new_id(),
        "type": event_type,
        "occurred_at": occurred,
        "workspace_id": workspace_id,
        "actor_id": actor_id,
        "resource_id": contact_id,
        "contact_id": contact_id,
        "data": {"id": contact_id, "first_name": "Ada", "version": 1},
    }
    event.update(extra)
    return event


def fan_out(client: Client, *records: dict[str, Any]) -> dict[str, Any]:
    """The audit stream's records through the fan-out Lambda; its answer (batchItemFailures)."""
    payload: dict[str, Any] = client.lambda_.invoke("fan_out_webhooks", {"Records": list(records)}).payload
    return payload


# ---- the delivery queue -------------------------------------------------------------------


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    """A received SQS message in the shape Lambda's SQS event source gives it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDATEST",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 (SQS's own checksum)
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def waiting() -> int:
    """Messages in the queue, visible, in flight or delayed."""
    settings = runtime.settings()
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    found = queue.client(settings).get_queue_attributes(QueueUrl=queue.queue_url(settings), AttributeNames=names)
    return sum(int(value) for value in found["Attributes"].values())


def drain(client: Client, seconds: float = 20.0, until: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """Feed the queue's messages to the delivery Lambda, as the event source mapping would (a
    message it reports failed shows again after the visibility timeout), until the queue is empty
    (or `until()` holds); the Lambda's answers."""
    settings = runtime.settings()
    sqs, url = queue.client(settings), queue.queue_url(settings)
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until is not None and until():
            return answers
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1).get("Messages", [])
        if not messages:
            if until is None and waiting() == 0:
                return answers
            time.sleep(0.05)
            continue
        answer = client.lambda_.invoke("deliver_webhooks", {"Records": [sqs_record(m) for m in messages]}).payload
        answers.append(answer)
        failed = {failure["itemIdentifier"] for failure in answer.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"the delivery queue was not drained within {seconds}s")


# ---- fixtures (imported by the webhook test modules) ----------------------------------------


def queue_ready(monkeypatch: Any) -> str:
    """The delivery queue created in moto, retries without pauses; its URL."""
    monkeypatch.setenv("WEBHOOK_RETRY_SECONDS", "0,0,0")
    runtime.reset()
    queue.forget()
    return queue.create_queue(runtime.settings())


def register(api: Any, url: str, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    reply = api.post("/webhooks", {"url": url, "events": events or ["*"], **extra})
    assert reply.status == 201, reply.body
    created: dict[str, Any] = reply.json
    return created
