"""The delivery queue (SQS): one message per delivery attempt, naming the delivery, not carrying it.

A message says which delivery (workspace, endpoint, event) and which attempt, and when that
attempt is due. SQS delays a message by at most 15 minutes: a later attempt is sent with the
longest delay and, when it arrives early, sent again with what remains (delivery.handle).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.config import Settings

MAX_DELAY_SECONDS = 900  # SQS's limit on DelaySeconds

_lock = threading.Lock()
_clients: dict[tuple[str | None, str], Any] = {}
_urls: dict[tuple[str | None, str], str] = {}


@dataclass(frozen=True)
class Job:
    """One attempt of one delivery (the message body)."""

    workspace_id: str
    webhook_id: str
    event_id: str
    attempt: int  # 1 for the first
    due: float  # epoch seconds

    def body(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(
            workspace_id=str(data["workspace_id"]),
            webhook_id=str(data["webhook_id"]),
            event_id=str(data["event_id"]),
            attempt=int(data["attempt"]),
            due=float(data["due"]),
        )


def endpoint(settings: Settings) -> str | None:
    """SQS's endpoint: SQS_ENDPOINT, or on the local stage the embedded store's (moto serves both)."""
    if settings.sqs_endpoint:
        return settings.sqs_endpoint
    return settings.dynamodb_endpoint if settings.is_local else None


def client(settings: Settings) -> Any:
    """A botocore SQS client made from the models' session (shared credentials and endpoint data),
    bounded like the DynamoDB client: a slow SQS fails the call, it does not hang it."""
    key = (endpoint(settings), settings.aws_region)
    found = _clients.get(key)
    if found is None:
        from botocore.config import Config

        from chalicelib.models import aws_session

        bounds = Config(
            connect_timeout=1,
            read_timeout=2,
            retries={"mode": "standard", "total_max_attempts": 3},
            account_id_endpoint_mode="disabled",
        )
        with _lock:
            found = _clients.setdefault(
                key,
                aws_session().create_client("sqs", region_name=settings.aws_region, endpoint_url=key[0], config=bounds),
            )
    return found


def queue_url(settings: Settings) -> str:
    if settings.webhook_queue_url:
        return settings.webhook_queue_url
    key = (endpoint(settings), settings.webhook_queue_name)
    if key not in _urls:
        _urls[key] = str(client(settings).get_queue_url(QueueName=settings.webhook_queue_name)["QueueUrl"])
    return _urls[key]


def send(settings: Settings, job: Job) -> None:
    """Queue an attempt, delayed until it is due (or by SQS's longest delay)."""
    delay = max(0, min(MAX_DELAY_SECONDS, int(job.due - time.time() + 0.999)))
    client(settings).send_message(QueueUrl=queue_url(settings), MessageBody=job.body(), DelaySeconds=delay)


def create_queue(settings: Settings) -> str:
    """Create the delivery queue by name (the local stage and tests; the template makes the deployed
    one); idempotent. Its URL."""
    created = client(settings).create_queue(
        QueueName=settings.webhook_queue_name, Attributes={"VisibilityTimeout": "60"}
    )
    url = str(created["QueueUrl"])
    _urls[(endpoint(settings), settings.webhook_queue_name)] = url
    return url


def forget() -> None:
    """Make clients and look up URLs afresh (tests, which start a new moto for each)."""
    with _lock:
        _clients.clear()
        _urls.clear()
