"""The local event-source stand-in's delivery rules, with a scripted handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.stream_pump import StreamPump


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
