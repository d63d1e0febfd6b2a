"""Contact Notes API: wiring only. The app, its middleware, the blueprints of chalicelib.api (one
per capability), OPTIONS and 405 on every resource, and the Lambda entry points."""

from __future__ import annotations

import gc

# Cold start: loading the modules below allocates a great deal and frees almost nothing, so
# the collector's passes over an ever larger heap are pure cost (measured: about 60 ms, see
# BENCHMARKS.md). It is off while they load; at the end of this module what they built is
# frozen out of future collections (it lives as long as the process) and collection resumes.
# (Should an import fail, the function cannot start at all, collector or not.)
_COLLECTING = gc.isenabled()
gc.disable()

import time
from collections.abc import Callable
from typing import Any

from chalice import Chalice
from chalice.app import DynamoDBEvent, Request, Response, SQSEvent, WebsocketEvent

from chalicelib import cors, observability
from chalicelib.api.audit import audit_api
from chalicelib.api.auth import auth_api
from chalicelib.api.batch import batch_api
from chalicelib.api.contacts import contacts_api
from chalicelib.api.docs import docs_api
from chalicelib.api.exports import exports_api
from chalicelib.api.gate import gate, jwt_auth
from chalicelib.api.imports import imports_api
from chalicelib.api.notes import notes_api
from chalicelib.api.routing import API
from chalicelib.api.search import search_api
from chalicelib.api.webhooks import webhooks_api
from chalicelib.api.workspaces import workspaces_api
from chalicelib.config import ConfigError, Settings
from chalicelib.errors import (
    BY_STATUS,
    AppError,
    MethodNotAllowed,
    Misconfigured,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from chalicelib.ratelimit import check_or_fail_open, policy_for
from chalicelib.runtime import settings
from chalicelib.web import (
    HTTP_METHODS,
    SECURITY_HEADERS,
    add_vary,
    handle_errors,
    logger,
    problem_response,
    request_id,
)

__all__ = [
    "app",
    "deliver_webhooks",
    "fan_out_webhooks",
    "index_contacts",
    "index_notes",
    "jwt_auth",
    "normalize_notes",
    "purge_workspaces",
    "push_live_updates",
    "ws_connect",
    "ws_disconnect",
    "ws_message",
]  # Lambda entry points

app = Chalice(app_name="contact-notes")
app.api.cors = False
for blueprint in (
    gate,
    auth_api,
    batch_api,
    contacts_api,
    notes_api,
    workspaces_api,
    search_api,
    audit_api,
    imports_api,
    exports_api,
    webhooks_api,
    docs_api,
):
    app.register_blueprint(blueprint)


def _request() -> Request:
    request = app.current_request
    assert request is not None, "views run only inside a request"  # noqa: S101
    return request


# Chalice needs a stream ARN when the app is defined; the real one (the notes table's
# stream) replaces this placeholder in infra/template.json, and `make run` feeds the
# handler from the embedded store's stream instead.
NOTES_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/contact-notes-notes/stream/1970-01-01T00:00:00.000"
)


@app.on_dynamodb_record(stream_arn=NOTES_STREAM_PLACEHOLDER, batch_size=100, starting_position="TRIM_HORIZON")
def normalize_notes(event: DynamoDBEvent) -> dict[str, Any]:
    """Normalize new and edited notes; report the records that failed."""
    from chalicelib.streams import handle_batch  # only the stream Lambda pays for batch processing

    observability.configure(settings())
    return handle_batch(event.to_dict(), event.context)


# As for the notes: the workspaces table's stream replaces this placeholder in
# infra/template.json, and `make run` feeds the handler from the embedded store.
WORKSPACES_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/contact-notes-workspaces/stream/1970-01-01T00:00:00.000"
)


@app.on_dynamodb_record(stream_arn=WORKSPACES_STREAM_PLACEHOLDER, batch_size=10, starting_position="TRIM_HORIZON")
def purge_workspaces(event: DynamoDBEvent) -> dict[str, Any]:
    """Sweep the contacts and notes of deleted shared workspaces; report the records that failed."""
    from chalicelib.workspaces.purge import handle_batch  # only the stream Lambda pays for it

    observability.configure(settings())
    return handle_batch(event.to_dict(), event.context)


# Search (#14) and change events (#17): one function per stream, both running
# chalicelib.change_streams; the contacts' and notes' streams replace these placeholders in
# infra/template.json.
CONTACTS_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/contact-notes-contacts/stream/1970-01-01T00:00:00.000"
)


@app.on_dynamodb_record(stream_arn=CONTACTS_STREAM_PLACEHOLDER, batch_size=100, starting_position="TRIM_HORIZON")
def index_contacts(event: DynamoDBEvent) -> dict[str, Any]:
    """Index the contacts for search and record their change events; report the records that failed."""
    return _index_for_search(event)


@app.on_dynamodb_record(stream_arn=NOTES_STREAM_PLACEHOLDER, batch_size=100, starting_position="TRIM_HORIZON")
def index_notes(event: DynamoDBEvent) -> dict[str, Any]:
    """Index the notes for search and record their change events; report the records that failed."""
    return _index_for_search(event)


def _index_for_search(event: DynamoDBEvent) -> dict[str, Any]:
    from chalicelib.change_streams import handle_batch  # only the stream Lambdas pay for it

    observability.configure(settings())
    return handle_batch(event.to_dict(), event.context)


# Live updates (#17): the WebSocket API's handlers and the audit table's stream consumer that
# pushes each event to its workspace's connections (chalicelib.live). The audit table's stream
# replaces this placeholder in infra/template.json; `make run` serves the handlers on a local
# WebSocket endpoint (devtools.live_gateway) and feeds the consumer from the embedded store.
app.experimental_feature_flags.update(["WEBSOCKETS"])
AUDIT_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/contact-notes-audit/stream/1970-01-01T00:00:00.000"
)


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response:
    """Accept a connection with a valid `?token=`; refuse anything else with a 401."""
    from chalicelib.live import sockets

    return sockets.connect(event.to_dict())


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> Response:
    """Answer {"action": "ping"} with {"type": "pong"}, anything else with an error message."""
    from chalicelib.live import sockets

    return sockets.message(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> Response:
    """Forget the connection."""
    from chalicelib.live import sockets

    return sockets.disconnect(event.to_dict())


@app.on_dynamodb_record(stream_arn=AUDIT_STREAM_PLACEHOLDER, batch_size=100, starting_position="LATEST")
def push_live_updates(event: DynamoDBEvent) -> dict[str, Any]:
    """Post each new event to its workspace's open connections; report the records that failed."""
    from chalicelib.live.fanout import handle_batch  # only the fan-out Lambda pays for it

    observability.configure(settings())
    return handle_batch(event.to_dict(), event.context)


# Webhooks (#17): the audit table's stream fans each event out to the endpoints that want it,
# and the delivery queue's consumer sends them. infra/template.json replaces both placeholders
# (the audit stream, the queue); `make run` feeds them from its embedded store and queue.
AUDIT_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/contact-notes-audit/stream/1970-01-01T00:00:00.000"
)
WEBHOOK_QUEUE_PLACEHOLDER = "arn:aws:sqs:us-east-1:000000000000:contact-notes-webhook-deliveries"


@app.on_dynamodb_record(stream_arn=AUDIT_STREAM_PLACEHOLDER, batch_size=100, starting_position="TRIM_HORIZON")
def fan_out_webhooks(event: DynamoDBEvent) -> dict[str, Any]:
    """Queue a delivery of each event to each endpoint that wants it; report the records that failed."""
    from chalicelib.webhooks.fanout import handle_batch  # only this Lambda pays for it

    current = settings()
    observability.configure(current)
    return handle_batch(event.to_dict(), event.context, current)


@app.on_sqs_message(queue_arn=WEBHOOK_QUEUE_PLACEHOLDER, batch_size=10)
def deliver_webhooks(event: SQSEvent) -> dict[str, Any]:
    """Make the delivery attempts the messages name; report the messages to show again."""
    from chalicelib.webhooks.delivery import handle_batch  # only this Lambda pays for it

    current = settings()
    observability.configure(current)
    return handle_batch(event.to_dict(), current)


@app.middleware("http")
def edge(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Every request: configuration check, rate limit, then the view; every answer gets
    its request id, rate-limit headers, CORS headers and safe headers, and Chalice's own
    errors become problems."""
    observability.request_id_var.set(request_id(event))
    observability.user_id_var.set((event.context.get("authorizer") or {}).get("user_id"))
    try:
        current = settings()
        observability.configure(current)  # first, so that what follows logs as configured
    except ConfigError:
        return _finish(_misconfigured(event), event)
    try:
        _ = current.signing_secret  # a deployed stage refuses to serve without its key
    except ConfigError:
        return _finish(_misconfigured(event), event, current.cors_allowed_origins)
    except AppError as error:  # the signing secret cannot be read now (logged where it was read)
        return _finish(problem_response(error, event), event, current.cors_allowed_origins)
    if event.method == "OPTIONS":
        # A preflight reads and writes nothing, and a browser cannot read a refused one (any
        # status but 2xx fails the fetch as a network error), so it costs no limiter call.
        # API Gateway's stage throttling still bounds them.
        return _finish(get_response(event), event, current.cors_allowed_origins)
    if _token_expired(event):
        expired = problem_response(Unauthorized("The access token has expired."), event)
        return _finish(expired, event, current.cors_allowed_origins)
    return _finish(_limited(event, get_response, current), event, current.cors_allowed_origins)


def _limited(event: Request, get_response: Callable[[Request], Response], current: Settings) -> Response:
    """The view's answer if the caller is within its rate limit, else a 429; with the limit's headers."""
    policy = policy_for(current)
    try:
        decision = check_or_fail_open(_caller(event), policy)
    except ServiceUnavailable as unavailable:
        if event.path.startswith(API):  # the API needs its store (/health reports it)
            return problem_response(unavailable, event)
        decision = None  # the docs need no store: served through an outage
    if decision is not None and not decision.allowed:
        limited = TooManyRequests(
            f"Rate limit exceeded; retry after {decision.retry_after} seconds.", retry_after=decision.retry_after or 1
        )
        response = problem_response(limited, event)
    else:
        response = get_response(event)
    if decision is not None:
        for name, value in decision.headers(policy).items():
            response.headers.setdefault(name, value)
    else:
        response.headers.setdefault("RateLimit-Policy", policy.header())
    return response


def _misconfigured(event: Request) -> Response:
    logger.exception("refusing requests: invalid configuration", extra={"request_id": request_id(event)})
    return problem_response(Misconfigured("The service is not configured."), event)


def _token_expired(event: Request) -> bool:
    expires = str((event.context.get("authorizer") or {}).get("exp") or "")
    return expires.isascii() and expires.isdigit() and int(expires) <= time.time()


def _caller(event: Request) -> str:
    """Who a request counts against: the user when authenticated, else the client IP."""
    authorizer = event.context.get("authorizer") or {}
    if authorizer.get("user_id"):
        return f"user#{authorizer['user_id']}"
    return "ip#" + str((event.context.get("identity") or {}).get("sourceIp") or "unknown")


def _finish(response: Response, event: Request, cors_origins: tuple[str, ...] = ()) -> Response:
    if response.status_code >= 400 and _is_chalice_error(response):
        response = _chalice_error_as_problem(response, event)
    if event.method != "OPTIONS":  # the OPTIONS view decides a preflight's CORS headers itself
        cors.decorate(response.headers, event.headers.get("origin"), cors_origins)  # type: ignore[arg-type]
    route = f"{event.method} {event.path}"
    observability.count("Requests", route=route, status=str(response.status_code))
    if response.status_code == 429:
        observability.count("RateLimited", route=route)
    response.headers.setdefault("X-Request-Id", request_id(event))
    if _revalidatable(response, event):
        # A client (never a shared cache) may keep it but must ask again (ETag, If-None-Match);
        # anything else (tokens, errors, writes) stays no-store.
        response.headers.setdefault("Cache-Control", "private, no-cache")
        add_vary(response.headers, "Authorization")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _revalidatable(response: Response, event: Request) -> bool:
    """A successful authenticated read, or its 304."""
    authenticated = bool((event.context.get("authorizer") or {}).get("user_id"))
    return authenticated and event.method in ("GET", "HEAD") and response.status_code in (200, 304)


def _is_chalice_error(response: Response) -> bool:
    return isinstance(response.body, dict) and set(response.body) == {"Code", "Message"}


def _chalice_error_as_problem(response: Response, event: Request) -> Response:
    if response.status_code == 405:  # a method no API Gateway resource can have (TRACE, ...)
        return problem_response(_not_allowed(event.method, event.path), event)
    return problem_response(BY_STATUS.get(response.status_code, AppError)(str(response.body["Message"])), event)


# ---- OPTIONS, and methods a resource does not have ---------------------------------------


ALLOWED: dict[str, list[str]] = {}  # resource path -> the methods it really has


def _not_allowed(method: str, path: str) -> MethodNotAllowed:
    allowed = ", ".join(ALLOWED.get(path, []))
    return MethodNotAllowed(f"{method} is not allowed here; use {allowed}.", headers={"Allow": allowed})


def method_not_allowed(**_: str) -> Response:
    request = _request()
    raise _not_allowed(request.method, request.path)


def options(**_: str) -> Response:
    """OPTIONS on any resource: its methods (RFC 9110), and for a CORS preflight from an
    allowed origin, permission to send the method it asks for. No token needed: a browser
    sends a preflight without the request's headers."""
    request = _request()
    methods = ALLOWED.get(request.path, [])
    headers: dict[str, str | list[str]] = {"Allow": ", ".join(methods)}
    origin = request.headers.get("origin")
    asked = request.headers.get("access-control-request-method")
    headers.update(cors.preflight_headers(origin, asked, methods, settings().cors_allowed_origins))
    return Response(body="", status_code=204, headers=headers)


def _answer_every_method() -> None:
    """Every resource answers OPTIONS (and so CORS preflights), and the methods it lacks with
    405 and Allow (RFC 9110), locally and on AWS.

    API Gateway never passes a method a resource does not define to the Lambda: it answers
    MISSING_AUTHENTICATION_TOKEN (our 404), while Chalice's local server answers 405. Defining
    every method API Gateway knows makes both say 405 with Allow. Methods no resource can have
    (TRACE, ...) never reach an API on AWS; locally Chalice's own 405 is rendered the same way
    (_chalice_error_as_problem). Neither is part of the OpenAPI document. Both are public: on
    AWS a preflight must not need the authorizer.
    """
    refuse = handle_errors(method_not_allowed, _request)
    answer_options = handle_errors(options, _request)
    for path, entries in list(app.routes.items()):
        ALLOWED[path] = [method for method in HTTP_METHODS if method in entries or method == "OPTIONS"]
        if "OPTIONS" not in entries:
            app.route(path, methods=["OPTIONS"], content_types=["*/*"])(answer_options)
        missing = [method for method in HTTP_METHODS if method not in ALLOWED[path]]
        if missing:
            app.route(path, methods=missing, content_types=["*/*"])(refuse)


_answer_every_method()

gc.freeze()  # everything above lives as long as the process: keep it out of collections
if _COLLECTING:
    gc.enable()
