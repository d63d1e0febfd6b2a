"""Load on the local stack: 8 concurrent clients over loopback, a mixed workload, 30 s.

Each client is its own user (so per-user limits would apply per client); the limiter is
set high here so the figure measures the service, and any 429 is counted as deliberate.
After the run every acknowledged write is read back.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.report import Figure

CLIENTS = 8
SECONDS = 30.0


@dataclass
class Client:
    base: str
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def sign_in(self) -> None:
        from tests.stack import signed_in

        self.headers = signed_in(self.base.removesuffix("/api/v1"), self.name)

    def _call(self, session: requests.Session, method: str, path: str, body: Any = None) -> requests.Response:
        start = time.perf_counter()
        reply = session.request(method, self.base + path, json=body, headers=self.headers, timeout=30)
        self.latencies.append(time.perf_counter() - start)
        self.statuses.append(reply.status_code)
        return reply

    def run(self, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as session:
            while time.monotonic() < deadline:
                roll = rng.random()
                if roll < 0.4 or not self.contacts:
                    reply = self._call(session, "POST", "/contacts", {"first_name": f"C{rng.randrange(10**6)}"})
                    if reply.status_code == 201:
                        self.contacts.append(reply.json()["id"])
                elif roll < 0.6:
                    contact = rng.choice(self.contacts)
                    reply = self._call(session, "POST", f"/contacts/{contact}/notes", {"body": "load  #test"})
                    if reply.status_code == 201:
                        self.notes.append(reply.json()["id"])
                elif roll < 0.9:
                    self._call(session, "GET", "/contacts?limit=20")
                else:
                    self._call(session, "GET", f"/contacts/{rng.choice(self.contacts)}")

    def unreadable(self) -> int:
        missing = 0
        with requests.Session() as session:
            for path in [f"/contacts/{c}" for c in self.contacts] + [f"/notes/{n}" for n in self.notes]:
                if session.get(self.base + path, headers=self.headers, timeout=30).status_code != 200:
                    missing += 1
        return missing


def run() -> list[Figure]:
    from tests.stack import start_stack

    stack = start_stack({"RATE_LIMIT_BURST": "100000", "RATE_LIMIT_PER_SECOND": "100000"})
    try:
        clients = [Client(stack.base + "/api/v1", f"load_user_{i}") for i in range(CLIENTS)]
        for client in clients:
            client.sign_in()
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=c.run, args=(deadline, i)) for i, c in enumerate(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        latencies = sorted(x for c in clients for x in c.latencies)
        statuses = [s for c in clients for s in c.statuses]
        errors = sum(1 for s in statuses if s >= 400 and s != 429)
        unreadable = sum(c.unreadable() for c in clients)
        writes = sum(len(c.contacts) + len(c.notes) for c in clients)
    finally:
        stack.stop()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return [
        Figure("load", f"{CLIENTS} clients, mixed read/write, {SECONDS:.0f} s: throughput", len(statuses) / elapsed,
               "req/s", budget=None),
        Figure("load", "p50 latency", statistics.median(latencies) * 1000, "ms", budget=None),
        Figure("load", "p99 latency", p99 * 1000, "ms", budget=None),
        Figure("load", "errors other than 429", errors, "requests", budget=0, exact=True),
        Figure("load", "deliberate 429s", sum(1 for s in statuses if s == 429), "requests", budget=None),
        Figure("load", f"acknowledged writes not readable afterwards (of {writes})", unreadable, "writes",
               budget=0, exact=True),
    ]  # fmt: skip
