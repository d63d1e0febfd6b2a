"""The delivery queue's consumer: each message is one attempt of one delivery, signed and sent.

Per message: a message that arrives before its attempt is due goes back with the delay left (SQS
delays by 15 minutes at most). Otherwise the delivery is read; one that is done, or whose attempt
was made already, is left alone; the attempt is then claimed (a conditional write: of two copies
of one message, SQS being at-least-once, only one sends), the endpoint read (deleted or disabled:
the delivery fails), its URL checked again (chalicelib.webhooks.urls) and the event POSTed to the
address checked, signed as Standard Webhooks specifies with the endpoint's secret. The outcome:
- 2xx: succeeded (and the endpoint's count of failures in a row, if any, back to 0);
- a timeout, no connection, 408, 429 or 5xx: the next attempt queued after the next pause of
  WEBHOOK_RETRY_SECONDS (±20 % jitter; a longer Retry-After is honoured up to an hour), or, with
  none left, failed;
- any other answer (3xx too: redirects are not followed), or a URL now refused: failed at once;
  410 Gone also disables the endpoint.
A delivery that failed for good adds one to the endpoint's failures in a row; at
WEBHOOK_DISABLE_AFTER the endpoint is disabled, with the reason shown to its admins.

The webhook-id header is the event's id, the same on every attempt, so a receiver can drop
repeats; webhook-timestamp is the attempt's time (receivers refuse stale ones).
A worker that dies mid-attempt leaves its claim to expire (timeout + LEASE_MARGIN_SECONDS),
before SQS shows the message again (the queue's visibility timeout is longer).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import observability
from chalicelib.config import Settings
from chalicelib.ids import utc_now
from chalicelib.models import WebhookDelivery, WebhookEndpoint
from chalicelib.webhooks import deliveries, queue, store, urls

logger = logging.getLogger("contact_notes.webhooks")

LEASE_MARGIN_SECONDS = 20
MAX_RETRY_AFTER_SECONDS = 3600
JITTER = 0.2
USER_AGENT = "ContactNotes-Webhooks/1"
RETRYABLE_STATUSES = {408, 429}
ERROR_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    refused: bool = False  # the URL is not allowed now: nothing was sent

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.refused:
            return False
        if self.status_code is None:
            return True  # a timeout or no connection
        return self.status_code in RETRYABLE_STATUSES or self.status_code >= 500


# ---- the Lambda's batch ----------------------------------------------------------------


def handle_batch(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Entry point for the queue's Lambda: every message of the batch at once (each mostly waits
    on its endpoint); the ones that raised come back as batchItemFailures for SQS to show again."""
    records = list(event.get("Records") or [])
    if not records:
        return {"batchItemFailures": []}
    # Copies of one message in one batch are one job: run once, answered together (the claim
    # already keeps two workers from sending twice; this keeps two threads of one from racing).
    jobs: dict[str, list[str]] = {}
    for record in records:
        jobs.setdefault(record["body"], []).append(record["messageId"])
    with ThreadPoolExecutor(max_workers=min(len(jobs), 10)) as pool:
        results = list(pool.map(lambda body: _safely(body, settings), jobs))
    failed = [ids for ids, ok in zip(jobs.values(), results, strict=True) if not ok]
    failures = [{"itemIdentifier": message_id} for ids in failed for message_id in ids]
    if failures:
        observability.count("WebhookMessagesFailed", len(failures))
    return {"batchItemFailures": failures}


def _safely(body: str, settings: Settings) -> bool:
    try:
        handle(queue.Job.parse(body), settings)
    except Exception:
        logger.exception("webhook message failed")
        return False
    return True


def handle(job: queue.Job, settings: Settings) -> str:
    """Make the attempt a message names, if it is still to be made; what happened, in a word."""
    if job.due - time.time() > 1:
        queue.send(settings, job)  # early: back to the queue with the delay left
        return "early"
    delivery = store.get_delivery(job.workspace_id, job.webhook_id, job.event_id)
    if delivery is None or delivery.status != store.PENDING:
        return "done"
    made = int(delivery.attempts or 0)
    if job.attempt <= made:
        if job.attempt == made:  # the attempt was made; its follow-up may never have been queued
            _queue_next(settings, job, made, delivery.next_attempt_at)
        return "done"
    if job.attempt > made + 1 or not store.claim(
        delivery, job.attempt, settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    ):
        return "taken"
    endpoint = store.get_endpoint(job.workspace_id, job.webhook_id)
    if endpoint is None or not endpoint.enabled:
        reason = "The endpoint was deleted." if endpoint is None else "The endpoint is disabled."
        _finish(settings, delivery, job, Outcome(error=reason, refused=True), endpoint, counted=False)
        return "failed"
    outcome = attempt(settings, endpoint, delivery)
    return _record(settings, delivery, job, outcome, endpoint)


def _queue_next(settings: Settings, job: queue.Job, made: int, next_attempt_at: str | None) -> None:
    due = datetime.fromisoformat(next_attempt_at.replace("Z", "+00:00")).timestamp() if next_attempt_at else time.time()
    queue.send(settings, queue.Job(job.workspace_id, job.webhook_id, job.event_id, made + 1, due))


# ---- one attempt ----------------------------------------------------------------------------


def attempt(settings: Settings, endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> Outcome:
    """Check the URL again, then POST the event, signed, to the address checked."""
    try:
        target = urls.check(str(endpoint.url), settings)
    except urls.Refused as refused:
        if refused.retryable:
            return Outcome(error=f"Not sent: {refused}.")
        return Outcome(error=f"Refused, nothing sent: the URL {refused}.", refused=True)
    body = deliveries.payload(delivery)
    return post(
        target, signed_headers(str(endpoint.secret), delivery.event_id, body), body, settings.webhook_timeout_seconds
    )


def signed_headers(secret: str, event_id: str, body: bytes) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    now = datetime.fromtimestamp(int(time.time()), UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def post(target: urls.Target, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """One POST, given up after `timeout` seconds by the wall clock, whatever the receiver does.

    urllib3's timeouts bound each socket operation, not the whole exchange: a receiver sending
    its answer a byte at a time would hold the attempt (and the function, and the other
    messages of its batch) for as long as it likes. So the POST runs on its own thread and is
    abandoned at the deadline; that thread ends at its next socket timeout at the latest, and
    whatever it gets then is dropped (the attempt is recorded as timed out and retried with the
    same webhook-id, which receivers deduplicate).
    """
    outcome: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcome.append(_post(target, headers, body, timeout)), daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else Outcome(error=f"No answer within {timeout:g} s.")


def _post(target: urls.Target, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """One POST to the checked address (never another: no redirects, no retries here), speaking to
    the name (Host, SNI, certificate); each socket operation bounded by `timeout`."""
    import urllib3
    from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

    pool: urllib3.HTTPConnectionPool
    options: dict[str, Any] = {"maxsize": 1, "retries": False, "timeout": urllib3.Timeout(total=timeout)}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, server_hostname=target.host, assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED", **options,
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **options)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "Host": target.host_header},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )  # fmt: skip
        try:
            return Outcome(status_code=response.status, retry_after=_retry_after(response.headers.get("retry-after")))
        finally:
            response.close()  # the answer's body is not read: only its status counts
    except NewConnectionError as exc:  # before TimeoutError, which urllib3 makes it a kind of
        return Outcome(error=f"Could not connect: {type(exc.__cause__ or exc).__name__}.")
    except TimeoutError:
        return Outcome(error=f"No answer within {timeout:g} s.")
    except (HTTPError, OSError) as exc:
        return Outcome(error=f"Could not connect: {type(exc).__name__}.")
    finally:
        pool.close()


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER_SECONDS)


# ---- the outcome ---------------------------------------------------------------------------


def _record(
    settings: Settings, delivery: WebhookDelivery, job: queue.Job, outcome: Outcome, endpoint: WebhookEndpoint
) -> str:
    observability.count("WebhookAttempts", outcome="succeeded" if outcome.succeeded else "failed")
    now = utc_now()
    common = {"last_status_code": outcome.status_code, "last_error": _short(outcome.error), "updated_at": now}
    if outcome.succeeded:
        store.record_attempt(
            delivery, job.attempt, {**common, "status": store.SUCCEEDED, "delivered_at": now, "next_attempt_at": None}
        )
        if int(endpoint.failures or 0) > 0:
            store.reset_failures(job.workspace_id, job.webhook_id)
        return "succeeded"
    pauses = settings.webhook_retry_seconds
    if outcome.retryable and job.attempt <= len(pauses):
        pause = pauses[job.attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (jitter)
        pause = max(pause, outcome.retry_after or 0)
        due = time.time() + pause
        next_at = datetime.fromtimestamp(due, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        store.record_attempt(delivery, job.attempt, {**common, "next_attempt_at": next_at})
        queue.send(settings, queue.Job(job.workspace_id, job.webhook_id, job.event_id, job.attempt + 1, due))
        return "retrying"
    _finish(settings, delivery, job, outcome, endpoint, counted=True)
    return "failed"


def _finish(
    settings: Settings,
    delivery: WebhookDelivery,
    job: queue.Job,
    outcome: Outcome,
    endpoint: WebhookEndpoint | None,
    *,
    counted: bool,
) -> None:
    """The delivery failed for good; the endpoint's failures in a row counted, and at the limit (or
    at a 410 Gone) the endpoint disabled, with why."""
    now = utc_now()
    changes = {
        "status": store.FAILED,
        "last_status_code": outcome.status_code,
        "last_error": _short(outcome.error or f"The endpoint answered {outcome.status_code}."),
        "next_attempt_at": None,
        "updated_at": now,
    }
    store.record_attempt(delivery, job.attempt, changes)
    if not counted or endpoint is None:
        return
    if outcome.status_code == 410:
        reason = f"The endpoint answered 410 Gone at {now}: it asked for no more deliveries."
    else:
        failures = store.count_failure(job.workspace_id, job.webhook_id)
        if failures < settings.webhook_disable_after:
            return
        last = changes["last_error"]
        reason = f"{failures} deliveries in a row failed after all their retries (the last at {now}: {last})"
    if store.disable(job.workspace_id, job.webhook_id, reason, now):
        observability.count("WebhooksDisabled")
        logger.warning(
            "webhook endpoint disabled", extra={"workspace_id": job.workspace_id, "webhook_id": job.webhook_id}
        )


def _short(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
