"""Change events through the audit sink (#17), in process over moto.

The contacts' stream consumer (index_contacts: search index, then the event appended to the
audit log) on batches of 100 records, and the audit sink alone (chalicelib.events.audit.record)
on the same records: events per second, DynamoDB calls per event (one conditional PutItem; a
removal one GetItem more for who deleted it), and writes per replayed record (none succeed).
"""

from __future__ import annotations

import time
from typing import Any

from bench.normalizer import WriteCounter
from bench.report import Figure

BATCHES = 5
BATCH = 100


def run() -> list[Figure]:
    from moto import mock_aws

    from bench.inprocess import environment

    with environment(), mock_aws():
        return _in_moto()


def _in_moto() -> list[Figure]:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    from app import app
    from chalicelib import runtime
    from chalicelib.events import audit
    from chalicelib.ids import new_id, utc_now
    from chalicelib.models import Contact, create_tables, dynamodb_client
    from chalicelib.store import deletion_mark
    from tests.streams import event, record

    runtime.reset()
    create_tables(runtime.settings())
    counter = WriteCounter()
    dynamodb_client().meta.events.register("after-call.dynamodb", counter)

    def batch(n: int) -> list[Contact]:
        now = utc_now()
        return [Contact("workspace", new_id(), first_name=f"Ada {n}", last_name="Lovelace",
                        email=f"a{n}-{i}@example.org", company="Engines", created_at=now, updated_at=now, version=1,
                        updated_by="user") for i in range(BATCH)]  # fmt: skip

    def timed(records: list[dict[str, Any]], step: Any) -> tuple[float, float, int]:
        counter.writes = counter.calls = 0
        start = time.perf_counter()
        step(records)
        return time.perf_counter() - start, counter.calls / len(records), counter.writes

    inserts = [record("INSERT", new=c) for n in range(BATCHES) for c in batch(n)]
    sink_alone = lambda records: [audit.record(DynamoDBRecord(r), 365) for r in records]  # noqa: E731
    sink_seconds, sink_calls, _ = timed(inserts, sink_alone)
    _, _, replay_writes = timed(inserts, sink_alone)  # the same records again: every put refused

    fresh = [record("INSERT", new=c) for n in range(BATCHES) for c in batch(n + BATCHES)]
    handler = app.handler_map["index_contacts"]

    def consume(records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), BATCH):
            assert handler(event(*records[start : start + BATCH]), None) == {"batchItemFailures": []}

    consumer_seconds, _, _ = timed(fresh, consume)

    gone = batch(99)
    for contact in gone:
        deletion_mark("workspace", "contact", contact.contact_id, "user", utc_now()).save()
    removals = [record("REMOVE", old=c) for c in gone]
    _, removal_calls, _ = timed(removals, sink_alone)

    events = len(inserts)
    return [
        Figure("events", "audit sink alone (moto in-process)", events / sink_seconds, "events/s", budget=None),
        Figure("events", "contacts stream consumer: search index + audit, batches of 100",
               len(fresh) / consumer_seconds, "records/s", budget=None),
        Figure("events", "DynamoDB calls per event (create, update)", sink_calls, "calls", budget=1.0, exact=True),
        Figure("events", "DynamoDB calls per event (delete: who deleted it)", removal_calls, "calls", budget=2.0,
               exact=True),
        Figure("events", "DynamoDB writes per replayed record", replay_writes / events, "writes", budget=0.0,
               exact=True),
    ]  # fmt: skip
