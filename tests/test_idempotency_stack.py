"""Idempotency-Key under `make run`'s stack: a client that loses the answer (it closes the
connection before reading it) and retries with the same key ends with one contact; concurrent
same-key POSTs create one; the CLI's session sends a key on every POST and the same one again."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import requests

from contactnotes_client import Backoff, call_with_retries
from contactnotes_client.session import Session
from tests.stack import Stack, poll, running_stack, signed_in


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(RATE_LIMIT_BURST="100000", RATE_LIMIT_PER_SECOND="100000") as running:
        yield running


def _contacts(api: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    return list(requests.get(api + "/contacts", headers=headers, timeout=10).json()["items"])


def _post_and_hang_up(base: str, path: str, headers: dict[str, str], body: bytes) -> None:
    """Send a POST on a raw socket and close it before reading a byte of the answer."""
    where = urlsplit(base)
    head = {"Host": where.netloc, "Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in head.items())]
    with socket.create_connection((where.hostname, where.port), timeout=5) as raw:
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def test_an_answer_lost_then_retried_with_the_same_key_makes_one_contact(stack: Stack) -> None:
    api = stack.base + "/api/v1"
    auth = signed_in(stack.base, "hangs-up")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"first_name": "Once"}
    _post_and_hang_up(stack.base, "/api/v1/contacts", {**auth, **key}, json.dumps(body).encode())

    # The retry may come while the first is still running (409, Retry-After: 1): the helper waits.
    def send() -> requests.Response:
        return requests.post(api + "/contacts", json=body, headers={**auth, **key}, timeout=10)

    answer = call_with_retries(send, Backoff(base=0.2, cap=2, max_attempts=10), retry_on={409, 429, 503})
    assert answer.status_code == 201, answer.text
    # Whichever of the two ran (the server may not have reached the first yet), the other finds
    # its stored answer: once a repeat is replayed, no request with this key can write again.
    replayed = poll(lambda: (reply := send()).headers.get("Idempotent-Replayed") == "true" and reply)
    assert replayed.json() == answer.json()
    assert [c["id"] for c in _contacts(api, auth)] == [answer.json()["id"]]


def test_concurrent_posts_with_one_key_create_one_contact(stack: Stack) -> None:
    api = stack.base + "/api/v1"
    auth = signed_in(stack.base, "in-a-hurry")
    headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}

    def send(_: int) -> requests.Response:
        return requests.post(api + "/contacts", json={"first_name": "Racy"}, headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    created = {a.json()["id"] for a in answers if a.status_code == 201}
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["type"].endswith(":idempotency-key-in-use")
    assert len(created) == 1
    assert [c["id"] for c in _contacts(api, auth)] == list(created)


class _LosesTheFirstAnswer(BaseHTTPRequestHandler):
    """A stand-in API: the first POST's connection is dropped unanswered, the next answered."""

    keys: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.keys.append(self.headers.get("Idempotency-Key"))
        if len(self.keys) == 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # the answer lost, the work (maybe) done
            return
        body = b'{"created": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_cli_session_sends_one_key_per_post_and_again_on_its_retry() -> None:
    _LosesTheFirstAnswer.keys = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LosesTheFirstAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = Session(f"http://127.0.0.1:{server.server_address[1]}/api/v1")
        # The retry waits its real backoff: at most 0.5 s before the first retry.
        assert session.send("POST", "imports", data=b"first_name\nA\n").json() == {"created": 1}
        assert session.send("POST", "imports", data=b"first_name\nB\n").json() == {"created": 1}
    finally:
        server.shutdown()
        server.server_close()
    first, retried, second = _LosesTheFirstAnswer.keys
    assert first and uuid.UUID(first) and retried == first  # the retry carries the same key
    assert second and second != first  # another POST, another key
