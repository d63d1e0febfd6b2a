"""A real browser (headless Chromium, as in test_docs_browser) calls the API from another origin.

A page served from a second local origin signs up, signs in and creates a contact through
`fetch` against `make run`'s stack, reading the ETag and a 422 problem; the same page served
from an origin not on CORS_ALLOWED_ORIGINS is refused by the browser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

from devtools.prereqs import CHROMIUM
from tests.stack import Stack, start_stack
from tests.system import system_tool
from tests.test_docs_browser import CHROMIUM_ARGS

PAGE = b"<!doctype html><html><head><title>front end</title></head><body>front end</body></html>"

# The front end's calls, as a single-page app makes them; returns what the page could read.
SIGN_UP_AND_CREATE = """
async (api) => {
  const json = {"Content-Type": "application/json"};
  const user = {username: "cors_user", email: "cors@example.com", password: "cross origin pw"};
  const registered = await fetch(api + "/auth/register", {method: "POST", headers: json, body: JSON.stringify(user)});
  const signIn = await fetch(api + "/auth/token", {
    method: "POST", body: new URLSearchParams({username: user.username, password: user.password})});
  const token = (await signIn.json()).access_token;
  const auth = {...json, Authorization: "Bearer " + token};
  const create = (fields) => fetch(api + "/contacts", {method: "POST", headers: auth, body: JSON.stringify(fields)});
  const created = await create({first_name: "Grace"});
  const contact = await created.json();
  const invalid = await create({first_name: ""});
  const changed = await fetch(api + "/contacts/" + contact.id, {method: "PATCH",
    headers: {...auth, "If-Match": created.headers.get("ETag")}, body: JSON.stringify({title: "Rear Admiral"})});
  const anonymous = await fetch(api + "/contacts");
  return {
    registered: registered.status,
    signedIn: signIn.status,
    created: {status: created.status, etag: created.headers.get("ETag"), id: contact.id,
              requestId: created.headers.get("X-Request-Id"), rateLimit: created.headers.get("RateLimit")},
    invalid: {status: invalid.status, contentType: invalid.headers.get("Content-Type"), body: await invalid.json()},
    changed: {status: changed.status, etag: changed.headers.get("ETag"), title: (await changed.json()).title},
    anonymous: {status: anonymous.status, body: await anonymous.json()},
  };
}
"""

# The same call from a page the API does not list: fetch must fail, not answer.
CREATE_FROM_ELSEWHERE = """
async (api) => {
  const tried = {};
  for (const [name, init] of Object.entries({
      preflighted: {method: "POST", headers: {"Content-Type": "application/json", Authorization: "Bearer x"},
                    body: JSON.stringify({first_name: "Mallory"})},
      simple: {method: "GET"}})) {
    try {
      const reply = await fetch(api + (name === "simple" ? "/health" : "/contacts"), init);
      tried[name] = "answered " + reply.status;
    } catch (error) {
      tried[name] = error.name;
    }
  }
  return tried;
}
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_: Any) -> None:
        pass


def _serve_page() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _origin(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def origins() -> Iterator[tuple[str, str]]:
    """Two front-end origins: the one the API lists, and one it does not."""
    listed, unlisted = _serve_page(), _serve_page()
    try:
        yield _origin(listed), _origin(unlisted)
    finally:
        for server in (listed, unlisted):
            server.shutdown()
            server.server_close()


@pytest.fixture
def cors_stack(origins: tuple[str, str]) -> Iterator[Stack]:
    stack = start_stack({"CORS_ALLOWED_ORIGINS": origins[0]})
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def chromium() -> str:
    """Looked up before any stack starts: a missing browser skips (or fails) at once."""
    return system_tool(CHROMIUM)


def test_a_page_on_an_allowed_origin_uses_the_api_and_another_is_refused(
    chromium: str, origins: tuple[str, str], cors_stack: Stack
) -> None:
    api = cors_stack.base + "/api/v1"
    console: list[ConsoleMessage] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda message: console.append(message))
            page.goto(origins[0] + "/app.html")
            seen = page.evaluate(SIGN_UP_AND_CREATE, api)

            elsewhere = browser.new_page()
            elsewhere.on("console", lambda message: console.append(message))
            elsewhere.goto(origins[1] + "/app.html")
            refused = elsewhere.evaluate(CREATE_FROM_ELSEWHERE, api)
        finally:
            browser.close()

    assert seen["registered"] == 201
    assert seen["signedIn"] == 200
    created = seen["created"]
    assert created["status"] == 201
    assert created["etag"] == f'"{created["id"]}-1"'  # an exposed header the page can read
    assert created["requestId"] and created["rateLimit"]
    invalid = seen["invalid"]
    assert invalid["status"] == 422
    assert invalid["contentType"] == "application/problem+json"
    assert invalid["body"]["status"] == 422 and invalid["body"]["errors"][0]["pointer"] == "#/first_name"
    assert seen["changed"] == {"status": 200, "etag": f'"{created["id"]}-2"', "title": "Rear Admiral"}
    assert seen["anonymous"]["status"] == 401  # API Gateway's own answer is readable too
    assert seen["anonymous"]["body"]["title"] == "Unauthorized"

    assert refused == {"preflighted": "TypeError", "simple": "TypeError"}
    blocked = [m.text for m in console if "blocked by CORS policy" in m.text]
    assert any(origins[1] in text for text in blocked), [m.text for m in console]
    assert not any(origins[0] in text for text in blocked)
