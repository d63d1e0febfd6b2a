"""Import and export (#15): rows per second and DynamoDB calls, in process over moto.

A 10,000-row CSV with Google Contacts' current header (a name, an email, a phone, an
organization and a note on every row, a third of the names non-ASCII) is imported into an
empty workspace in one request, then exported back page by page as CSV and as JSON (with the
notes); a batch of 100 creates is counted apart. Each request's time is split at the SDK
boundary (bench.scale.clocked): moto's share is the emulator's, not DynamoDB's, so rows per
second are printed end to end (INFO) and for our code alone (the time outside the store
calls). The write calls per 100 rows and the batch's calls are exact counts, with the
issue's budgets (6 and 8).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from bench.report import Figure
from bench.scale import clocked

ROWS = 10_000
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
HEADER = ["First Name", "Middle Name", "Last Name", "Organization Name", "Organization Title",
          "Organization Department", "E-mail 1 - Label", "E-mail 1 - Value", "Phone 1 - Label", "Phone 1 - Value",
          "Notes", "Labels"]  # fmt: skip
FIRST = ("Maria", "José", "Anna", "Łukasz", "Zoë", "Wei", "Sofia", "Liam", "Noah", "Björn", "Kenji", "Inês")


def google_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for i in range(rows):
        first = FIRST[i % len(FIRST)]
        writer.writerow([first, "", f"Row{i}", "Acme", "Buyer", "Sales", "* Work", f"row{i}@example.com",
                         "Mobile", f"+1 415 555 {i % 10_000:04d}", f"Met {first} at the fair, line {i}.",
                         "* myContacts"])  # fmt: skip
    return out.getvalue().encode()


def run() -> list[Figure]:
    from bench.calls import counting
    from bench.inprocess import moto_api

    figures: list[Figure] = []
    with moto_api() as anonymous, counting() as counter, clocked() as clock:
        alice = anonymous.sign_up("alice")
        body = google_csv(ROWS)
        counter.reset()
        clock.reset()
        started = time.perf_counter()
        reply = alice.request("POST", "/imports", raw=body, headers={"content-type": "text/csv"})
        elapsed = time.perf_counter() - started
        report = reply.json
        assert reply.status == 200 and report["created"] == ROWS and report["notes_created"] == ROWS, report
        writes = sum(1 for call in counter.calls if call in WRITES)
        ours = elapsed - clock.emulator
        figures += [
            Figure("transfer", f"import {ROWS:,} CSV rows (a note each): end to end, moto", ROWS / elapsed,
                   "rows/s", None),
            Figure("transfer", "import: our code alone (time outside DynamoDB calls)", ROWS / ours, "rows/s",
                   None),
            Figure("transfer", f"import {ROWS:,} rows: our code's time (API function timeout 25 s)",
                   ours, "s", 10.0),
            Figure("transfer", "import: DynamoDB write calls per 100 rows (email and note each)", writes / (ROWS / 100),
                   "calls", 6.0),
            Figure("transfer", "import: all DynamoDB calls per 100 rows, reads and limiter included",
                   len(counter.log) / (ROWS / 100), "calls", None),
        ]  # fmt: skip
        for fmt in ("csv", "json"):
            figures += _export(alice, fmt, clock)
        figures.append(_batch(alice, counter))
    return figures


def _export(alice: Any, fmt: str, clock: Any) -> list[Figure]:
    clock.reset()
    started = time.perf_counter()
    path, exported, pages = f"/exports?format={fmt}", 0, 0
    while path:
        reply = alice.request("GET", path)
        assert reply.status == 200, reply.body[:300]
        pages += 1
        exported += len(reply.json["contacts"]) if fmt == "json" else reply.body.count(b"@example.com")
        link = reply.header("link")
        path = link.split(">", 1)[0].removeprefix("<").split("/api/v1", 1)[1] if link else ""
    elapsed = time.perf_counter() - started
    assert exported == ROWS and pages == ROWS // 1000, (exported, pages)
    label = "CSV" if fmt == "csv" else "JSON with notes"
    return [
        Figure("transfer", f"export {ROWS:,} contacts as {label}: end to end, moto", ROWS / elapsed, "rows/s", None),
        Figure("transfer", f"export as {label}: our code alone", ROWS / (elapsed - clock.emulator), "rows/s", None),
    ]


def _batch(alice: Any, counter: Any) -> Figure:
    operations = [{"op": "create", "contact": {"first_name": f"B{i}", "email": f"batch{i}@example.com"}}
                  for i in range(100)]  # fmt: skip
    counter.reset()
    reply = alice.request("POST", "/contacts/batch", {"operations": operations})
    assert reply.status == 200, reply.body[:300]
    return Figure("transfer", "batch of 100 creates: DynamoDB calls, limiter included", len(counter.log), "calls", 8.0)
