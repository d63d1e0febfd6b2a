"""DynamoDB calls per request, per route, counted through botocore's event hooks.

One table of routes serves `make bench` (which prints it with budgets), the test suite
(`tests/test_call_counts.py`, which asserts every count exactly) and the README's table
(`python -m bench.calls` rewrites it; a test fails while it differs). Budgets, from
issue #7, count every call a request makes, the rate limiter's included.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.inprocess import authorizer_event
from bench.report import Figure
from tests.api import PASSWORD, Api

COUNT_EVENT = "before-parameter-build.dynamodb"
README = Path(__file__).resolve().parent.parent / "README.md"
README_START, README_END = "<!-- calls:start (python -m bench.calls writes this table) -->", "<!-- calls:end -->"
NOTES_PER_BATCH = 25  # BatchWriteItem's limit: a contact's notes are deleted 25 at a time

# Budgets on all calls of one request, limiter included.
BUDGETS = {
    "item": 2,  # one item read, written or deleted (a transaction is one call)
    # #16: a creating POST sent with an Idempotency-Key: Powertools' INPROGRESS PutItem and its
    # UpdateItem storing the answer, on top of the item's 2; a repeat is the refused PutItem alone.
    "item, with an Idempotency-Key": 2 + 2,
    "replay": 2,
    "list": 3,  # one page of a list
    "limiter only": 1,  # no item read or written (refused input, health): the limiter's call only
    "none": 0,  # a CORS preflight: answered from the route table, not even the limiter is asked
    "rotation": 3,  # a refresh: the limiter, one read of token, family and user, one write
    # A contact and its 2 notes: a transaction expecting no notes (it fails, handing the contact
    # back), the contact deleted as stored with the deleter's mark (#17), the limiter, one Query
    # per MB of notes, one BatchWriteItem per 25 notes.
    "cascade": 3 + 1 + math.ceil(2 / NOTES_PER_BATCH),
    # Managing a workspace's members: the memberships it concerns (one read), or the user
    # named by username or email (claim, then user), one transaction, the limiter.
    "membership": 4,
    # A search (#14): one Query per term on the index, one BatchGetItem for the page, the limiter.
    "search, 1 term": 1 + 2,
    "search, 3 terms": 3 + 2,
    # Bulk (#15): a batch of 100 creates, issue #15's budget; an import of 100 rows with an email and
    # a note each: one BatchGetItem for the emails, at most 6 writes (the budget), the limiter.
    "batch of 100 creates": 8,
    "import, 100 rows": 1 + 6 + 1,
}


class CallCounter:
    """DynamoDB operations sent by our models, as (operation, table) in order.

    Calls on the rate-limit table are kept apart (`limiter_calls`) from the application's
    own (`calls`, `by_operation()`), so each budget can be asserted on its own.
    """

    def __init__(self, limiter_table: str) -> None:
        self.limiter_table = limiter_table
        self.log: list[tuple[str, str | None]] = []
        self.limiter_params: list[dict[str, str]] = []  # the limiter's expressions, in order

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        table = params.get("TableName")
        self.log.append((model.name, table))
        if table == self.limiter_table and model.name == "UpdateItem":
            expressions = ("UpdateExpression", "ConditionExpression")
            self.limiter_params.append({name: params[name] for name in expressions})

    @property
    def calls(self) -> list[str]:
        return [operation for operation, table in self.log if table != self.limiter_table]

    @property
    def limiter_calls(self) -> list[str]:
        return [operation for operation, table in self.log if table == self.limiter_table]

    def by_operation(self) -> dict[str, int]:
        return dict(Counter(self.calls))

    @property
    def scans(self) -> int:
        return sum(1 for operation, _ in self.log if operation == "Scan")

    def reset(self) -> None:
        self.log.clear()
        self.limiter_params.clear()


@contextmanager
def counting() -> Iterator[CallCounter]:
    """Count every call made through our models' (shared) client while the block runs."""
    from chalicelib import runtime
    from chalicelib.models import dynamodb_client

    counter = CallCounter(runtime.settings().rate_limits_table)
    events = dynamodb_client().meta.events
    events.register(COUNT_EVENT, counter)
    try:
        yield counter
    finally:
        events.unregister(COUNT_EVENT, counter)


@dataclass(frozen=True)
class Route:
    """One request; `{c}`, `{n}` and `{spare}` in the path name the seeded items."""

    name: str
    method: str
    path: str
    status: int
    calls: dict[str, int]  # the application's calls by operation (the limiter's apart)
    budget: str | None  # a key of BUDGETS; None = reported only
    body: Any = None
    form: str | None = None
    limiter: list[str] = field(default_factory=lambda: ["UpdateItem"])
    in_workspace: bool = False  # sent with a token into the seeded shared workspace {w}
    headers: dict[str, str] = field(default_factory=dict)
    repeat: bool = False  # sent once before, uncounted: the counted request is its repeat
    # Sent with If-None-Match naming the ETag a first read gave (request_headers): a 304 still
    # costs the read it answers for, since the validator is known only once the item or page is read.
    revalidate: bool = False


MISSING_ID = "01M8FP1CYTGFW5FGC7TXSJ3ETH"
IDEMPOTENCY_KEY = "bench-calls-key"

ROUTES = [
    Route("GET /health", "GET", "/health", 200, {}, "limiter only"),
    Route("GET /auth/me", "GET", "/auth/me", 200, {"GetItem": 1}, "item"),
    Route(
        "POST /auth/register",
        "POST",
        "/auth/register",
        201,
        {"TransactWriteItems": 1},
        "item",
        body={"username": "newbie", "email": "newbie@example.com", "password": PASSWORD},
    ),
    # Sign-in reads the username's claim and the account's lockout state together (one
    # BatchGetItem over the users and limiter tables), then the user, and starts a refresh-token
    # family (one transaction). It is in none of the classes, so it is reported only.
    Route(
        "POST /auth/token",
        "POST",
        "/auth/token",
        200,
        {"BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1},
        None,
        form=f"username=alice&password={PASSWORD}",
    ),
    # A refresh reads token, family and user in one BatchGetItem and rotates in one transaction
    # (into a shared workspace, one GetItem of the membership more: tests/test_sessions.py).
    Route(
        "POST /auth/token (refresh grant)",
        "POST",
        "/auth/token",
        200,
        {"BatchGetItem": 1, "TransactWriteItems": 1},
        "rotation",
        form="grant_type=refresh_token&refresh_token={refresh}",
    ),
    Route(
        "POST /auth/token (refresh token used twice: sign-in revoked)",
        "POST",
        "/auth/token",
        401,
        {"BatchGetItem": 1, "UpdateItem": 1},
        "rotation",
        form="grant_type=refresh_token&refresh_token={rotated}",
    ),
    Route(
        "POST /auth/token (refresh token not of our shape)",
        "POST",
        "/auth/token",
        401,
        {},
        "limiter only",
        form="grant_type=refresh_token&refresh_token=garbage",
    ),
    Route(
        "POST /auth/logout",
        "POST",
        "/auth/logout",
        204,
        {"TransactWriteItems": 1},
        "item",
        body={"refresh_token": "{refresh}"},
    ),
    Route(
        "POST /auth/logout (not a token of ours)",
        "POST",
        "/auth/logout",
        204,
        {},
        "limiter only",
        body={"refresh_token": "x"},
    ),
    # Reads the user and the account's lockout state, writes the user (the same password here,
    # so that the benchmark's user can sign in again): reported only, like sign-in.
    Route(
        "POST /auth/password",
        "POST",
        "/auth/password",
        204,
        {"GetItem": 1, "UpdateItem": 1},
        None,
        body={"current_password": PASSWORD, "new_password": PASSWORD},
        limiter=["UpdateItem", "GetItem"],
    ),
    Route("POST /contacts", "POST", "/contacts", 201, {"PutItem": 1}, "item", body={"first_name": "X"}),
    Route("POST /contacts (with an Idempotency-Key)", "POST", "/contacts", 201, {"PutItem": 2, "UpdateItem": 1},
          "item, with an Idempotency-Key", body={"first_name": "K"}, headers={"Idempotency-Key": IDEMPOTENCY_KEY}),
    Route("POST /contacts (the same Idempotency-Key again: replayed)", "POST", "/contacts", 201, {"PutItem": 1},
          "replay", body={"first_name": "K"}, headers={"Idempotency-Key": IDEMPOTENCY_KEY}, repeat=True),
    Route("GET /contacts", "GET", "/contacts", 200, {"Query": 1}, "list"),
    Route("GET /contacts/{id}", "GET", "/contacts/{c}", 200, {"GetItem": 1}, "item"),
    Route("PUT /contacts/{id}", "PUT", "/contacts/{c}", 200, {"UpdateItem": 1}, "item", body={"first_name": "Y"}),
    Route("PATCH /contacts/{id}", "PATCH", "/contacts/{c}", 200, {"UpdateItem": 1}, "item", body={"title": "T"}),
    # One contact per email (#15): the claim is written in the contact's transaction; a new
    # email is a failed same-email update, a read, and the move (its answer is what it wrote).
    Route("POST /contacts (with an email)", "POST", "/contacts", 201, {"TransactWriteItems": 1}, "item",
          body={"first_name": "E", "email": "e@example.org"}),
    Route("PATCH /contacts/{id} (a new email)", "PATCH", "/contacts/{c}", 200,
          {"UpdateItem": 1, "GetItem": 1, "TransactWriteItems": 1}, None, body={"email": "new@example.org"}),
    Route("DELETE /contacts/{id} (never had notes)", "DELETE", "/contacts/{spare}", 204,
          {"TransactWriteItems": 1}, "item"),
    Route(
        "DELETE /contacts/{id} (and its 2 notes)",
        "DELETE",
        "/contacts/{c}",
        204,
        {"TransactWriteItems": 2, "Query": 1, "BatchWriteItem": 1},
        "cascade",
    ),
    Route(
        "POST /contacts/{id}/notes",
        "POST",
        "/contacts/{c}/notes",
        201,
        {"TransactWriteItems": 1},
        "item",
        body={"body": "b"},
    ),
    Route(
        "POST /notes",
        "POST",
        "/notes",
        201,
        {"TransactWriteItems": 1},
        "item",
        body={"contact_id": "{c}", "body": "b"},
    ),
    Route("GET /contacts/{id}/notes", "GET", "/contacts/{c}/notes", 200, {"GetItem": 1, "Query": 1}, "list"),
    Route("GET /notes/{id}", "GET", "/notes/{n}", 200, {"GetItem": 1}, "item"),
    Route("GET /contacts/{id} (If-None-Match: 304)", "GET", "/contacts/{c}", 304, {"GetItem": 1}, "item",
          revalidate=True),
    Route("GET /contacts (If-None-Match: 304)", "GET", "/contacts", 304, {"Query": 1}, "list", revalidate=True),
    Route("PUT /notes/{id}", "PUT", "/notes/{n}", 200, {"UpdateItem": 1}, "item", body={"body": "c"}),
    Route("PATCH /notes/{id}", "PATCH", "/notes/{n}", 200, {"UpdateItem": 1}, "item", body={"body": "d"}),
    Route("DELETE /notes/{id}", "DELETE", "/notes/{n}", 204, {"TransactWriteItems": 1}, "item"),
    Route("OPTIONS /contacts/{id} (CORS preflight)", "OPTIONS", "/contacts/{c}", 204, {}, "none", limiter=[]),
    Route("GET /contacts/{malformed id}", "GET", "/contacts/not-an-id", 404, {}, "limiter only"),
    Route("GET /contacts/{missing id}", "GET", f"/contacts/{MISSING_ID}", 404, {"GetItem": 1}, "item"),
    Route("POST /contacts (invalid)", "POST", "/contacts", 422, {}, "limiter only", body={"first_name": ""}),
    Route("GET /contacts (forged cursor)", "GET", "/contacts?cursor=xyz", 400, {}, "limiter only"),
    # ---- workspaces: {w} is a shared workspace alice owns, {m} a member (editor), {newbie} a user outside it.
    # Sign-in into a shared workspace also reads the membership (none into the personal one).
    Route(
        "POST /auth/token (into a shared workspace)",
        "POST",
        "/auth/token",
        200,
        {"BatchGetItem": 1, "GetItem": 2, "TransactWriteItems": 1},
        None,
        form=f"username=alice&password={PASSWORD}&workspace_id={{w}}",
    ),
    Route(
        "POST /auth/token (a workspace you are not in: 403)",
        "POST",
        "/auth/token",
        403,
        {"BatchGetItem": 1, "GetItem": 2},
        None,
        form=f"username=alice&password={PASSWORD}&workspace_id={MISSING_ID}",
    ),
    # A creation in a shared workspace checks the workspace in the same call (a transaction).
    Route(
        "POST /contacts (in a shared workspace)",
        "POST",
        "/contacts",
        201,
        {"TransactWriteItems": 1},
        "item",
        body={"first_name": "X"},
        in_workspace=True,
    ),
    Route("POST /contacts (viewer: 403)", "POST", "/contacts", 403, {}, "limiter only", body={"first_name": "X"},
          in_workspace=True),
    Route("POST /workspaces", "POST", "/workspaces", 201, {"GetItem": 1, "TransactWriteItems": 1}, None,
          body={"name": "Team"}),
    Route("GET /workspaces", "GET", "/workspaces", 200, {"Query": 1, "BatchGetItem": 1}, "list"),
    Route("GET /workspaces/{id}", "GET", "/workspaces/{w}", 200, {"TransactGetItems": 1}, "item"),
    Route("GET /workspaces/{id} (personal)", "GET", "/workspaces/{me}", 200, {"GetItem": 1}, "item"),
    Route("GET /workspaces/{malformed id}", "GET", "/workspaces/not-an-id", 404, {}, "limiter only"),
    # Renaming reads the caller's role (the answer shows it), then checks it again in the rename's transaction.
    Route("PATCH /workspaces/{id}", "PATCH", "/workspaces/{w}", 200, {"GetItem": 1, "TransactWriteItems": 1}, None,
          body={"name": "Renamed"}),
    Route("DELETE /workspaces/{id}", "DELETE", "/workspaces/{w}", 204,
          {"GetItem": 1, "Query": 1, "TransactWriteItems": 1}, None),
    Route("DELETE /workspaces/{id} (personal: 409)", "DELETE", "/workspaces/{me}", 409, {}, "limiter only"),
    Route("GET /workspaces/{id}/members", "GET", "/workspaces/{w}/members", 200, {"GetItem": 1, "Query": 1}, "list"),
    # Adding a member reads the user named (claim, then user); the caller's role is checked in the transaction.
    Route("POST /workspaces/{id}/members", "POST", "/workspaces/{w}/members", 201,
          {"GetItem": 2, "TransactWriteItems": 1}, "membership", body={"username": "{newbie}", "role": "viewer"}),
    Route("POST /workspaces/{id}/members (already a member: 409)", "POST", "/workspaces/{w}/members", 409,
          {"GetItem": 2, "TransactWriteItems": 1}, "membership", body={"username": "{member}", "role": "viewer"}),
    Route("POST /workspaces/{id}/members (unknown user: 404)", "POST", "/workspaces/{w}/members", 404,
          {"GetItem": 1}, "membership", body={"username": "nobody", "role": "viewer"}),
    # Changing or removing a member reads both memberships; the transaction checks the caller's role again.
    Route("PATCH /workspaces/{id}/members/{user_id}", "PATCH", "/workspaces/{w}/members/{m}", 200,
          {"BatchGetItem": 1, "TransactWriteItems": 1}, "membership", body={"role": "admin"}),
    Route("PATCH /workspaces/{id}/members/{user_id} (last owner: 409)", "PATCH", "/workspaces/{w}/members/{me}", 409,
          {"BatchGetItem": 1, "TransactWriteItems": 1}, "membership", body={"role": "admin"}),
    Route("DELETE /workspaces/{id}/members/{user_id}", "DELETE", "/workspaces/{w}/members/{m}", 204,
          {"BatchGetItem": 1, "TransactWriteItems": 1}, "membership"),
    # ---- search: the seeded contact "John" and its notes, indexed (world_for) before the request.
    Route("GET /search (1 term)", "GET", "/search?q=john", 200, {"Query": 1, "BatchGetItem": 1}, "search, 1 term"),
    Route("GET /search (3 terms)", "GET", "/search?q=john%20jo%20j", 200, {"Query": 3, "BatchGetItem": 1},
          "search, 3 terms"),
    # Nothing holds the term: nothing to load.
    Route("GET /search (If-None-Match: 304)", "GET", "/search?q=john", 304, {"Query": 1, "BatchGetItem": 1},
          "search, 1 term", revalidate=True),
    Route("GET /search (no match)", "GET", "/search?q=zebra", 200, {"Query": 1}, "search, 1 term"),
    # ---- change events (#17): one Query of the audit log (or one of its indexes), the limiter.
    Route("GET /audit", "GET", "/audit", 200, {"Query": 1}, "item"),
    Route("GET /audit?resource_id=&type= (index + filter)", "GET", "/audit?resource_id={c}&type=contact.updated", 200,
          {"Query": 1}, "item"),
    Route("GET /contacts/{id}/history", "GET", "/contacts/{c}/history", 200, {"Query": 1}, "item"),
    Route("GET /search (blank query: 422)", "GET", "/search?q=%20", 422, {}, "limiter only"),
    Route("GET /search (forged cursor)", "GET", "/search?q=john&cursor=xyz", 400, {}, "limiter only"),
    # ---- bulk (#15): 100 creates in one batch; 100 rows of a JSON export, each with an email and a note.
    Route("POST /contacts/batch (100 creates)", "POST", "/contacts/batch", 200,
          {"BatchGetItem": 1, "TransactWriteItems": 2}, "batch of 100 creates",
          body={"operations": [{"op": "create", "contact": {"first_name": f"P{i}", "email": f"batch{i}@example.com"}}
                               for i in range(100)]}),
    Route("POST /imports (100 rows, a note each)", "POST", "/imports", 200,
          {"BatchGetItem": 1, "TransactWriteItems": 4}, "import, 100 rows",
          body={"format": "contact-notes", "version": 1,
                "contacts": [{"first_name": f"R{i}", "email": f"row{i}@example.com", "notes": [{"body": f"note {i}"}]}
                             for i in range(100)]}),
    # ---- export (#15): the seeded contacts, one with 2 notes. A page is one Query of the contacts;
    # the JSON backup adds one range of the notes' index (one Query per MB), none when no contact
    # on the page ever had a note.
    Route("GET /exports (JSON with notes)", "GET", "/exports", 200, {"Query": 2}, "list"),
    Route("GET /exports (CSV)", "GET", "/exports?format=csv", 200, {"Query": 1}, "list"),
    Route("GET /exports (vCard)", "GET", "/exports?format=vcard", 200, {"Query": 1}, "list"),
    Route("GET /exports (unknown format: 422)", "GET", "/exports?format=xml", 422, {}, "limiter only"),
    Route("GET /exports (forged cursor)", "GET", "/exports?cursor=xyz", 400, {}, "limiter only"),
    # Webhooks (#17), {h} an endpoint of alice's: creating one is a transaction with the workspace's
    # count of endpoints; a test delivery reads the endpoint and puts its delivery (and sends one
    # SQS message, not counted here); the deliveries list reads the endpoint (404 if not yours) first.
    Route("POST /webhooks", "POST", "/webhooks", 201, {"TransactWriteItems": 1}, "item",
          body={"url": "http://127.0.0.1:9/hooks", "events": ["*"]}),
    Route("POST /webhooks (refused URL: 422)", "POST", "/webhooks", 422, {}, "limiter only",
          body={"url": "http://169.254.169.254/", "events": ["*"]}),
    Route("GET /webhooks", "GET", "/webhooks", 200, {"Query": 1}, "list"),
    Route("GET /webhooks/{id}", "GET", "/webhooks/{h}", 200, {"GetItem": 1}, "item"),
    Route("PATCH /webhooks/{id}", "PATCH", "/webhooks/{h}", 200, {"UpdateItem": 1}, "item",
          body={"description": "CRM sync", "enabled": True}),
    Route("DELETE /webhooks/{id}", "DELETE", "/webhooks/{h}", 204, {"TransactWriteItems": 1}, "item"),
    Route("POST /webhooks/{id}/test", "POST", "/webhooks/{h}/test", 202, {"GetItem": 1, "PutItem": 1}, None),
    Route("GET /webhooks/{id}/deliveries", "GET", "/webhooks/{h}/deliveries", 200, {"GetItem": 1, "Query": 1},
          "list"),
    # Last: the failed attempt it records makes alice's next sign-in clear it (one DeleteItem
    # more), which `make bench`, sending every route as alice in turn, would charge to it.
    Route(
        "POST /auth/password (wrong current password)",
        "POST",
        "/auth/password",
        403,
        {"GetItem": 1},
        None,
        body={"current_password": "not the password", "new_password": "whatever it is"},
        limiter=["UpdateItem", "GetItem", "UpdateItem"],
    ),
]  # fmt: skip


_seeded = itertools.count(1)


def seed(send: Any, *, workspace: bool = True) -> dict[str, str]:
    """A contact with two notes and a contact that never had one; with `workspace`, a shared
    workspace with a member and a user outside it (new names each time); `send(method, path, body)`."""
    contact = send("POST", "/contacts", {"first_name": "John"})
    note = send("POST", f"/contacts/{contact['id']}/notes", {"body": "hi"})
    send("POST", f"/contacts/{contact['id']}/notes", {"body": "another"})
    spare = send("POST", "/contacts", {"first_name": "Spare"})
    world = {"c": contact["id"], "n": note["id"], "spare": spare["id"]}
    if not workspace:
        return world
    me = send("GET", "/auth/me", None)["id"]
    shared = send("POST", "/workspaces", {"name": "Bench"})
    n = next(_seeded)
    member, newbie = f"member{n}", f"newbie{n}"
    for name in (member, newbie):
        send("POST", "/auth/register", {"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    added = send("POST", f"/workspaces/{shared['id']}/members", {"username": member, "role": "editor"})
    world |= {"me": me, "w": shared["id"]}
    return world | {"m": added["user_id"], "member": member, "newbie": newbie}


WORKSPACE_NAMES = ("{w}", "{m}", "{me}", "{member}", "{newbie}")
SESSION_NAMES = ("{refresh}", "{rotated}")


def world_for(routes: list[Route], api: Any, send: Any) -> dict[str, str]:
    """What these routes need seeded, and no more (each user registered or signed in costs an
    argon2 hash): the contacts and notes always; the shared workspace and its members for the
    routes that name them or act in it; fresh and spent refresh tokens for those that spend them;
    the search index brought up to date for the search routes."""
    text = " ".join(f"{r.path} {r.body} {r.form}" for r in routes)
    workspace = any(r.in_workspace for r in routes) or any(name in text for name in WORKSPACE_NAMES)
    world = seed(send, workspace=workspace)
    if any(name in text for name in SESSION_NAMES):
        world |= sessions(api)
    if "{h}" in text:
        world |= webhook(send)
    if any(r.path.startswith("/search") for r in routes):
        from tests.search import index_now  # the streams delivered to the indexers, as AWS would

        index_now(api.client)
    return world


def webhook(send: Any) -> dict[str, str]:
    """A webhook endpoint of alice's (`{h}`), and the delivery queue its test deliveries go to."""
    from chalicelib import runtime
    from chalicelib.webhooks import queue

    queue.create_queue(runtime.settings())
    return {"h": send("POST", "/webhooks", {"url": "http://127.0.0.1:9/hooks", "events": ["*"]})["id"]}


def sender(api: Any, route: Route, world: dict[str, str]) -> Any:
    """Who sends the route: alice, or alice with a token into {w} (as owner, or, for a 403
    route, as a viewer: {member} made viewer first)."""
    if not route.in_workspace:
        return api
    user = "alice"
    if route.status == 403:
        api.request("PATCH", f"/workspaces/{world['w']}/members/{world['m']}", {"role": "viewer"})
        user = world["member"]
    reply = api.token_form(f"username={user}&password={PASSWORD}&workspace_id={world['w']}".encode())
    return type(api)(api.client, token=reply.json["access_token"], user=api.user)


def sessions(api: Api) -> dict[str, str]:
    """A fresh refresh token (`{refresh}`) and one already exchanged (`{rotated}`), each of a
    sign-in of its own, for the routes that spend them."""
    login = f"username={api.user['username']}&password={PASSWORD}".encode()
    rotated = api.token_form(login).json["refresh_token"]
    api.token_form(f"grant_type=refresh_token&refresh_token={rotated}".encode())
    return {"refresh": api.token_form(login).json["refresh_token"], "rotated": rotated}


def request_headers(route: Route, caller: Any, path: str) -> dict[str, str]:
    """If-None-Match naming the ETag a first read gave, for a route that revalidates."""
    if not route.revalidate:
        return {}
    return {"If-None-Match": caller.request(route.method, path).header("etag") or ""}


def send_route(caller: Any, route: Route, path: str, body: Any, counter: CallCounter) -> Any:
    """Send the route as `caller` (its first sending uncounted when it is a repeat or a
    revalidation); the reply."""
    headers = {**route.headers, **request_headers(route, caller, path)}
    if route.repeat:
        caller.request(route.method, path, body, headers=headers)
    counter.reset()
    if route.form:
        return caller.token_form(body)
    return caller.request(route.method, path, body, headers=headers)


def fill(route: Route, world: dict[str, str]) -> tuple[str, Any]:
    """The route's path and body (or form) with the seeded ids and tokens in place."""
    body = route.body
    if isinstance(body, dict):
        body = {k: v.format(**world) if isinstance(v, str) else v for k, v in body.items()}
    if route.form is not None:
        body = route.form.format(**world).encode()
    return route.path.format(**world), body


def run() -> list[Figure]:
    from bench.inprocess import moto_api  # moto and the app: only when the benchmark runs

    figures: list[Figure] = []
    scans = 0
    with moto_api() as anonymous, counting() as counter:
        alice = anonymous.sign_up("alice")

        def send(method: str, path: str, body: Any) -> Any:
            return alice.request(method, path, body).json

        for route in ROUTES:
            world = world_for([route], alice, send)
            path, body = fill(route, world)
            caller = sender(alice, route, world)
            scans += counter.scans
            reply = send_route(alice if route.form else caller, route, path, body, counter)
            assert reply.status == route.status, (route.name, reply.status, reply.body)
            assert counter.by_operation() == route.calls, (route.name, counter.log)
            total = len(counter.log)
            ops = ", ".join(f"{n} {op}" for op, n in sorted(Counter(op for op, _ in counter.log).items())) or "none"
            budget = BUDGETS[route.budget] if route.budget else None
            figures.append(Figure("calls", f"{route.name}: {ops}", total, "calls", budget=budget))
        scans += counter.scans
        counter.reset()
        assert alice.token
        answer = anonymous.client.lambda_.invoke("jwt_auth", authorizer_event(alice.token)).payload
        assert answer["principalId"], answer
        figures.append(Figure("calls", "authorizer (a Lambda of its own)", len(counter.log), "calls", 0, exact=True))
        scans += counter.scans
        figures.append(Figure("calls", "Scans in all of the above", scans, "calls", 0, exact=True))
    return figures


def _listed(operations: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in operations.items()) or "none"


def readme_table() -> str:
    """The README's calls table: per route, the calls on its data, on the rate-limits table (the
    limiter; sign-in's lockout too) and the total that `make bench` prints."""
    rows = [
        "| Request | Answer | Calls on its data | Calls on the rate-limits table | Total |",
        "|---|---|---|---|---|",
    ]
    for route in ROUTES:
        total = sum(route.calls.values()) + len(route.limiter)
        limiter = _listed(dict(Counter(route.limiter)))
        rows.append(f"| {route.name} | {route.status} | {_listed(route.calls)} | {limiter} | {total} |")
    rows.append("| the authorizer (a Lambda of its own) | – | none | none | 0 |")
    return "\n".join(rows)


def readme_with_table(text: str) -> str:
    """README text with the calls table between its markers replaced by `readme_table()`."""
    before, start, rest = text.partition(README_START)
    _, end, after = rest.partition(README_END)
    if not (start and end):
        raise ValueError(f"README.md has no {README_START} ... {README_END} markers")
    return before + README_START + "\n" + readme_table() + "\n" + README_END + after


if __name__ == "__main__":
    README.write_text(readme_with_table(README.read_text()))
