"""Normalizer throughput: the pure function, and the stream handler on batches of 100 over moto.

Also counts DynamoDB writes per record: exactly one for a note that changes, none for a
record that needs nothing (a replay, our own write-back, a removal).
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.report import Figure

NOTE_BYTES = 1024
PURE_NOTES = 3000
BATCHES = 5
BATCH = 100


def messy_note(rng: random.Random) -> str:
    """About 1 KB of text with the mess integrations send: odd spaces, CRLF, controls, unicode."""
    words = ["Met", "Ada", "über", "café", "שלום", "日本語", "👩🏽‍💻", "#Design", "e\u0301", "follow-up", "#Q3"]
    spaces = [" ", "  ", "\t", "\u00a0", "\u3000", " \r\n", "\r\n\r\n\r\n", "\x07", " \n "]
    parts: list[str] = []
    while sum(len(p.encode()) for p in parts) < NOTE_BYTES:
        parts += [rng.choice(words), rng.choice(spaces)]
    return "".join(parts)


def bench_pure() -> list[Figure]:
    from chalicelib.normalize import extract_tags, normalize_text

    rng = random.Random(7)
    notes = [messy_note(rng) for _ in range(PURE_NOTES)]
    start = time.perf_counter()
    for text in notes:
        extract_tags(normalize_text(text))
    elapsed = time.perf_counter() - start
    rate = PURE_NOTES / elapsed
    return [Figure("normalizer", "pure normalize + tags, 1 KB notes", rate, "records/s", budget=None)]


class WriteCounter:
    """Successful DynamoDB writes and all calls, through botocore's after-call hook."""

    def __init__(self) -> None:
        self.writes = 0
        self.calls = 0

    def __call__(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        if model.name in {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"} and "Error" not in parsed:
            self.writes += 1


def bench_handler() -> list[Figure]:
    from moto import mock_aws

    from bench.inprocess import environment

    with environment(), mock_aws():
        return _bench_handler_in_moto()


def _bench_handler_in_moto() -> list[Figure]:
    from app import app
    from chalicelib import runtime
    from chalicelib.ids import new_id, utc_now
    from chalicelib.models import Note, contact_note_key, create_tables, dynamodb_client
    from tests.streams import event, record

    runtime.reset()
    create_tables(runtime.settings())
    handler = app.handler_map["normalize_notes"]
    counter = WriteCounter()
    dynamodb_client().meta.events.register("after-call.dynamodb", counter)
    rng = random.Random(11)

    def pending_batch() -> list[Note]:
        notes = []
        for _ in range(BATCH):
            note_id, now = new_id(), utc_now()
            note = Note(
                "owner", note_id, contact_id="C", contact_note=contact_note_key("C", note_id), body=messy_note(rng),
                processing_status="pending", created_at=now, updated_at=now, version=1,
            )  # fmt: skip
            note.save()
            notes.append(note)
        return notes

    batches = [pending_batch() for _ in range(BATCHES)]
    counter.writes = counter.calls = 0
    start = time.perf_counter()
    for notes in batches:
        result = handler(event(*(record("INSERT", new=n) for n in notes)), None)
        assert result == {"batchItemFailures": []}, result
    elapsed = time.perf_counter() - start
    changed_records = BATCHES * BATCH
    writes_changed = counter.writes / changed_records

    counter.writes = counter.calls = 0
    for notes in batches:  # the same records again: a replay
        handler(event(*(record("INSERT", new=n) for n in notes)), None)
    writes_replay = counter.writes / changed_records
    processed = [Note.get("owner", n.note_id) for n in batches[0]]
    counter.writes = counter.calls = 0
    handler(event(*(record("MODIFY", new=n) for n in processed)), None)  # our own write-back
    writes_own, calls_own = counter.writes / BATCH, counter.calls / BATCH

    return [
        Figure("normalizer", "stream handler, batches of 100 (moto in-process)", changed_records / elapsed,
               "records/s", budget=None),
        Figure("normalizer", "DynamoDB writes per changed note", writes_changed, "writes", budget=1.0, exact=True),
        Figure("normalizer", "DynamoDB writes per replayed record", writes_replay, "writes", budget=0.0, exact=True),
        Figure("normalizer", "DynamoDB calls per own write-back record", calls_own, "calls", budget=0.0, exact=True),
        Figure("normalizer", "DynamoDB writes per own write-back record", writes_own, "writes", budget=0.0,
               exact=True),
    ]  # fmt: skip


def run() -> list[Figure]:
    return bench_pure() + bench_handler()
