"""The local event-source stand-in's delivery rules, with a scripted handler."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devtools.stream_pump import StreamPump
from tests.stack import free_port, poll


def _records(*names: str) -> list[dict[str, Any]]:
    return [{"dynamodb": {"SequenceNumber": name, "Keys": {"id": {"S": name}}}} for name in names]


def _pump(handler: Any, dead: Path) -> StreamPump:
    return StreamPump(endpoint="http://127.0.0.1:9", region="us-east-1", table_name="t", handler=handler,
                      dead_letters=dead)  # fmt: skip


def test_each_record_gets_its_own_retries(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    a_failures = [2]

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        batch = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(batch)
        failed = []
        if "a" in batch and a_failures[0] > 0:
            a_failures[0] -= 1
            failed.append("a")
        if "b" in batch:
            failed.append("b")
        return {"batchItemFailures": [{"itemIdentifier": f} for f in failed]}

    dead = tmp_path / "dead.jsonl"
    _pump(handler, dead).deliver(_records("a", "b", "c"))
    letters = [json.loads(line)["record"]["dynamodb"]["SequenceNumber"] for line in dead.read_text().splitlines()]
    assert letters == ["b"]
    # a: 2 failures then success; b: first try + 3 retries, then dead-lettered; c delivered after.
    assert calls[:3] == [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]]
    assert calls[3:] == [["b", "c"], ["b", "c"], ["b", "c"], ["c"]]


def test_a_raising_handler_fails_the_whole_batch(tmp_path: Path) -> None:
    def handler(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    dead = tmp_path / "dead.jsonl"
    _pump(handler, dead).deliver(_records("x"))
    assert len(dead.read_text().splitlines()) == 1


# ---- the store going away and coming back ----------------------------------------------------


@contextmanager
def dropping_store(port: int) -> Iterator[list[int]]:
    """A store that accepts each connection and drops it at once; yields how many it dropped."""
    dropped = [0]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    listener.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            dropped[0] += 1
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield dropped
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()


def _notes_table(endpoint: str) -> Any:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    client.create_table(
        TableName="notes",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client


def test_pump_backs_off_while_the_store_is_down_then_reads_the_recreated_tables_stream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    seen: list[str] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(r["dynamodb"]["Keys"]["id"]["S"] for r in event["Records"])
        return {"batchItemFailures": []}

    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    store.start()
    client = _notes_table(endpoint)
    pump = StreamPump(endpoint=endpoint, region="us-east-1", table_name="notes", handler=handler,
                      dead_letters=tmp_path / "dead.jsonl", poll_seconds=0.05)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="contact_notes.stream_pump"):
        pump.start()
        try:
            client.put_item(TableName="notes", Item={"id": {"S": "before"}})
            poll(lambda: seen == ["before"])
            store.stop()
            with dropping_store(port) as dropped:
                poll(lambda: dropped[0] >= 4)  # polled again and again, backing off
            store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            store.start()
            # moto's state outlives its server here; a restarted store has new tables, so make them.
            client.delete_table(TableName="notes")
            _notes_table(endpoint).put_item(TableName="notes", Item={"id": {"S": "after"}})
            poll(lambda: seen == ["before", "after"])
        finally:
            pump.stop()
            store.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "contact_notes.stream_pump"]
    assert all(r.exc_info is None for r in caplog.records)
    assert sum("store unavailable" in line for line in lines) == 1  # one line for the outage, not one per poll
    assert any("has a new stream" in line for line in lines), lines
    assert all(a != b for a, b in itertools.pairwise(lines)), lines
    assert len(lines) <= 6, lines


def test_an_answer_that_describes_no_stream_is_an_outage_not_a_bug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that is shutting down can answer with anything: the pump backs off with one
    line, as for any outage, and logs no traceback."""
    pump = _pump(lambda event: {"batchItemFailures": []}, tmp_path / "dead.jsonl")
    ok = type("Http", (), {"status_code": 200, "headers": {}})()
    answers = {"DescribeTable": {"Table": {"LatestStreamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}},
               "DescribeStream": {}}  # fmt: skip

    def canned(model: Any, **_: Any) -> tuple[object, dict[str, Any]]:
        return ok, answers[model.name]

    pump._dynamodb.meta.events.register_first("before-call.dynamodb.DescribeTable", canned)
    pump._streams.meta.events.register_first("before-call.dynamodb-streams.DescribeStream", canned)
    with caplog.at_level(logging.WARNING, logger="contact_notes.stream_pump"):
        pump.start()
        try:
            poll(lambda: any("backing off" in r.getMessage() for r in caplog.records), 10)
        finally:
            pump.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("NoStream" in m and "no description" in m for m in messages), messages
    assert not [r for r in caplog.records if r.exc_info], messages
