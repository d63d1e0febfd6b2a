"""Live updates end to end on the local stack: a colleague's write (POST or PATCH /contacts) to
the WebSocket message carrying its event, at p50 and p99.

Two members of one workspace: one holds a WebSocket open (the `websockets` client, as a browser
would), the other writes. Each write is timed from just before its request to the arrival of
the message whose event names the written contact. The path is the whole of #17 under `make
run`: API -> contacts table -> stream pump -> the lead's event derivation -> audit table ->
stream pump -> fan-out (chalicelib.live.fanout) -> Management API stand-in -> socket. The
pumps poll every 0.2 s, so about 0.2-0.4 s of each figure is the two polls.

It needs the event pipeline (contact changes written to the audit table, the lead's part of
#17): without it no message ever comes, which the last figure shows (and the run stops after
the first write rather than wait for each).
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import requests

from bench.report import Figure

WRITES = 60
WAIT_SECONDS = 5.0  # for one write's message
PASSWORD = "long enough"  # noqa: S105 (the test users' password, as tests/stack.py signs them up)


def _token(base: str, username: str, workspace_id: str | None = None) -> str:
    form = {"username": username, "password": PASSWORD, **({"workspace_id": workspace_id} if workspace_id else {})}
    reply = requests.post(base + "/api/v1/auth/token", data=form, timeout=10)
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def _team(base: str) -> tuple[str, str, str]:
    """A workspace with two members; the watcher's and the writer's tokens into it."""
    from tests.stack import signed_in

    owner = signed_in(base, "live_watcher")
    signed_in(base, "live_writer")
    api = base + "/api/v1"
    team = requests.post(api + "/workspaces", json={"name": "Live"}, headers=owner, timeout=10).json()["id"]
    requests.post(f"{api}/workspaces/{team}/members", json={"username": "live_writer", "role": "editor"},
                  headers=owner, timeout=10).raise_for_status()  # fmt: skip
    return team, _token(base, "live_watcher", team), _token(base, "live_writer", team)


def _wait_for(socket: Any, resource_id: str, deadline: float) -> bool:
    """Read messages until one carries an event about `resource_id`; False at the deadline."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            return False
        if isinstance(message, dict) and message.get("resource_id") == resource_id:
            return True
    return False


def measure(base: str, ws: str) -> tuple[list[float], int]:
    """Latencies (seconds) of the writes whose message came, and how many never did."""
    from websockets.sync.client import connect

    _, watcher, writer = _team(base)
    headers = {"Authorization": f"Bearer {writer}"}
    api = base + "/api/v1"
    latencies: list[float] = []
    missing = 0
    contact_id = ""
    with connect(f"{ws}/?token={watcher}") as socket, requests.Session() as session:
        for number in range(WRITES):
            started = time.monotonic()
            if number % 2 == 0:  # a new contact, then an edit of it
                reply = session.post(api + "/contacts", json={"first_name": f"Ada {number}"}, headers=headers,
                                     timeout=10)  # fmt: skip
                contact_id = reply.json()["id"]
            else:
                reply = session.patch(f"{api}/contacts/{contact_id}", json={"title": f"CTO {number}"},
                                      headers=headers, timeout=10)  # fmt: skip
            reply.raise_for_status()
            if _wait_for(socket, contact_id, started + WAIT_SECONDS):
                latencies.append(time.monotonic() - started)
            else:
                missing += 1
                if not latencies:  # no event pipeline in this build: waiting for each write tells nothing more
                    missing = WRITES
                    break
    return latencies, missing


def run() -> list[Figure]:
    from tests.stack import start_stack

    stack = start_stack({"RATE_LIMIT_BURST": "100000", "RATE_LIMIT_PER_SECOND": "100000"})
    try:
        latencies, missing = measure(stack.base, stack.ws)
    finally:
        stack.stop()
    figures = [Figure("live", f"writes whose event never reached the socket (of {WRITES})", missing, "writes",
                      budget=0, exact=True)]  # fmt: skip
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
        figures[:0] = [
            Figure("live", "write to WebSocket message, p50 (make run)", statistics.median(ordered) * 1000, "ms",
                   budget=1000),
            Figure("live", "write to WebSocket message, p99 (make run)", p99 * 1000, "ms", budget=1000),
        ]  # fmt: skip
    return figures
