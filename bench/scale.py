"""Scale: one user's reads while the tables hold 1,000 and then 100,000 items of other users.

Alice has 20 contacts, one of them with 20 notes. Other users' contacts and notes (half
each, 50 of each per user) are written straight into moto's in-process backend, which is
quick and is what a table full of strangers looks like to a Query. Each request is
invoked as Lambda does (authorizer, then the API handler), interleaved, at both sizes.

moto's own Query is not what DynamoDB's is: it walks every item of the table to find a
partition (moto/dynamodb/models/table.py, `Table.query`), so end to end a list costs more
on a bigger moto table whatever the caller does. The benchmark therefore splits each
request's time at the SDK boundary: the time inside moto (between the first and the last
`before-send` hook, the emulator's work) and the rest, which is ours plus botocore's. The
budget of 1.2 applies to the rest, and to the items DynamoDB reads for us (ScannedCount,
what a Query is billed on); the end-to-end ratios are printed beside them.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.report import Figure

SIZES = (1_000, 100_000)
SAMPLES = 30
OWN_CONTACTS = 20
OWN_NOTES = 20
PER_OTHER_USER = 100  # items of each other user: 50 contacts, 50 notes
CONTROL = "health"


@dataclass
class Clock:
    """Time spent inside the emulator, and the items it read, per DynamoDB call."""

    started: float = 0.0
    emulator: float = 0.0
    items_read: int = 0
    sent: list[str] = field(default_factory=list)

    def enter(self, **_: Any) -> None:
        self.started = time.perf_counter()

    def leave(self, **_: Any) -> None:
        self.emulator += time.perf_counter() - self.started

    def answered(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.sent.append(model.name)
        if model.name in {"Query", "Scan"}:
            self.items_read += int(parsed.get("ScannedCount", 0))
        elif model.name == "GetItem":
            self.items_read += 1 if parsed.get("Item") else 0

    def reset(self) -> None:
        self.emulator, self.items_read, self.sent = 0.0, 0, []


@contextmanager
def clocked() -> Iterator[Clock]:
    """A Clock on our models' client: `before-send` hooks on either side of moto's bracket its work.

    botocore calls the handlers of the most specific event name first: ours on
    `before-send.dynamodb` runs before moto's stubber (registered on `before-send`), and ours
    registered last on `before-send` runs after it.
    """
    from chalicelib.models import dynamodb_client

    clock = Clock()
    events = dynamodb_client().meta.events
    hooks = [("before-send.dynamodb", clock.enter, events.register_first), ("before-send", clock.leave,
             events.register_last), ("after-call.dynamodb", clock.answered, events.register_last)]  # fmt: skip
    for event, hook, register in hooks:
        register(event, hook)
    try:
        yield clock
    finally:
        for event, hook, _ in hooks:
            events.unregister(event, hook)


def fill_other_users(start: int, stop: int) -> None:
    """Other users' items numbered [start, stop), straight into moto's backend."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib import runtime

    settings = runtime.settings()
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.aws_region]
    contacts, notes = backend.get_table(settings.contacts_table), backend.get_table(settings.notes_table)
    stamp = {"created_at": {"S": "2026-01-01T00:00:00Z"}, "updated_at": {"S": "2026-01-01T00:00:00Z"}}
    for i in range(start // 2, stop // 2):
        owner = {"S": f"other-{i // (PER_OTHER_USER // 2):07d}"}
        contact_id, note_id = f"0C{i:024d}", f"0N{i:024d}"
        contacts.put_item({"owner_id": owner, "contact_id": {"S": contact_id}, "first_name": {"S": "Someone"},
                           "version": {"N": "1"}, **stamp})  # fmt: skip
        notes.put_item({"owner_id": owner, "note_id": {"S": note_id}, "contact_id": {"S": contact_id},
                        "contact_note": {"S": f"{contact_id}#{note_id}"}, "body": {"S": "Met at the fair. " * 4},
                        "processing_status": {"S": "processed"}, "version": {"N": "1"}, **stamp})  # fmt: skip


@dataclass
class Sample:
    total: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    items_read: set[int] = field(default_factory=set)


def measure(requests: dict[str, Callable[[], int]], clock: Clock) -> dict[str, Sample]:
    samples = {name: Sample() for name in requests}
    for _ in range(SAMPLES):
        for name, send in requests.items():
            clock.reset()
            start = time.perf_counter()
            status = send()
            elapsed = time.perf_counter() - start
            assert status == 200, (name, status)
            assert "Scan" not in clock.sent, name
            samples[name].total.append(elapsed)
            samples[name].ours.append(elapsed - clock.emulator)
            samples[name].items_read.add(clock.items_read)
    return samples


def run() -> list[Figure]:
    from bench.inprocess import LambdaCaller, moto_api

    with moto_api() as anonymous:
        alice = anonymous.sign_up("alice")
        ids = [alice.post("/contacts", {"first_name": f"Friend {i}"}).json["id"] for i in range(OWN_CONTACTS)]
        for i in range(OWN_NOTES):
            alice.post(f"/contacts/{ids[0]}/notes", {"body": f"Note {i}"})
        call = LambdaCaller(alice.token or "")
        requests = {
            "get-contact": lambda: call("GET", "/contacts/{contact_id}", f"/contacts/{ids[0]}", {"contact_id": ids[0]}),
            "list-contacts": lambda: call("GET", "/contacts", "/contacts", None),
            "list-notes": lambda: call(
                "GET", "/contacts/{contact_id}/notes", f"/contacts/{ids[0]}/notes", {"contact_id": ids[0]}
            ),
            CONTROL: lambda: call("GET", "/health", "/health", None),
        }
        results: list[dict[str, Sample]] = []
        filled = 0
        with clocked() as clock:
            for size in SIZES:
                fill_other_users(filled, size)
                filled = size
                # The table lives in this process's heap, as it never would on AWS: keep
                # it out of garbage collection, or every collection our code triggers
                # walks 100,000 moto items and is charged to us.
                gc.collect()
                gc.freeze()
                results.append(measure(requests, clock))
        gc.unfreeze()
    return _figures(results)


def _figures(results: list[dict[str, Sample]]) -> list[Figure]:
    small, large = results
    at = f"at {SIZES[1]:,} / at {SIZES[0]:,}"
    med = statistics.median
    # The two sizes are measured one after the other, and this machine's speed drifts by a
    # fifth between them. The health check reads no table of ours: its own ratio is that
    # drift, and each request's ratio is divided by it.
    drift = med(large[CONTROL].ours) / med(small[CONTROL].ours)
    figures = [Figure("scale", f"{CONTROL} (no table read): ours p50 {at}, the machine's drift", drift, "x", None)]
    for name in small:
        if name == CONTROL:
            continue
        a, b = small[name], large[name]
        figures += [
            Figure("scale", f"{name}: ours (all but moto) p50 {at} ({med(a.ours) * 1e3:.1f} -> "
                   f"{med(b.ours) * 1e3:.1f} ms), over the drift", med(b.ours) / med(a.ours) / drift, "x",
                   budget=1.2),
            Figure("scale", f"{name}: items DynamoDB reads {at} ({max(a.items_read)} -> "
                   f"{max(b.items_read)})", max(b.items_read) / max(max(a.items_read), 1), "x", budget=1.0),
            Figure("scale", f"{name}: end to end p50 {at} ({med(a.total) * 1e3:.1f} -> "
                   f"{med(b.total) * 1e3:.1f} ms, moto included)", med(b.total) / med(a.total), "x", budget=None),
        ]  # fmt: skip
    return figures
