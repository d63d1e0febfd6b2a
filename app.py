"""Contact Notes API: routes only. Each view parses, calls one service function, shapes the reply."""

from __future__ import annotations

import gc

# Cold start: loading the modules below allocates a great deal and frees almost nothing, so
# the collector's passes over an ever larger heap are pure cost (measured: about 60 ms, see
# BENCHMARKS.md). It is off while they load; at the end of this module what they built is
# frozen out of future collections (it lives as long as the process) and collection resumes.
# (Should an import fail, the function cannot start at all, collector or not.)
_COLLECTING = gc.isenabled()
gc.disable()

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from chalice import Chalice
from chalice.app import AuthRequest, AuthResponse, DynamoDBEvent, Request, Response

from chalicelib import cors, docs, observability, openapi, services
from chalicelib.auth import InvalidToken, verify_token
from chalicelib.config import ConfigError, Settings
from chalicelib.errors import (
    BY_STATUS,
    AppError,
    BadRequest,
    MethodNotAllowed,
    Misconfigured,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from chalicelib.openapi import Operation
from chalicelib.ratelimit import check_or_fail_open, policy_for
from chalicelib.runtime import api_settings, settings
from chalicelib.schemas import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    Health,
    NoteCreate,
    NoteIn,
    NoteOut,
    NotePage,
    PageQuery,
    RegisterIn,
    TokenForm,
    TokenOut,
    UserOut,
)
from chalicelib.web import (
    FORM_TYPES,
    HTTP_METHODS,
    SECURITY_HEADERS,
    etag,
    handle_errors,
    if_match_version,
    json_media_types,
    json_response,
    logger,
    note_aliases_resolved,
    parse,
    problem_response,
    read_form,
    read_json_object,
    request_id,
    unauthorized_error,
)

API = "/api/v1"
app = Chalice(app_name="contact-notes")
app.api.cors = False


class UsagePlanAuthResponse(AuthResponse):
    """Chalice's AuthResponse plus `usageIdentifierKey`, which names the API key (and so the
    usage plan) API Gateway meters the request against when the API key source is AUTHORIZER."""

    def __init__(self, *args: Any, usage_identifier_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_identifier_key = usage_identifier_key

    def to_dict(self, request: AuthRequest) -> dict[str, Any]:
        result = super().to_dict(request)
        if self.usage_identifier_key:
            result["usageIdentifierKey"] = self.usage_identifier_key
        return result


@app.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    """Verify the bearer token alone (no database call); allow every route (cached per token)."""
    current = api_settings()
    try:
        principal = verify_token(current, auth_request.token or "")
    except InvalidToken:
        raise unauthorized_error() from None
    context = {
        "user_id": principal.user_id,
        "owner_id": principal.owner_id,
        "tier": principal.tier,
        # API Gateway caches this answer per token for ttl_seconds; the API checks exp again
        # so that a token expiring inside that window stops working on time.
        "exp": str(principal.expires_at),
    }
    return UsagePlanAuthResponse(
        routes=["*"],
        principal_id=principal.user_id,
        context=context,
        usage_identifier_key=current.usage_plan_keys.get(principal.tier),
    )


def _request() -> Request:
    request = app.current_request
    assert request is not None, "views run only inside a request"  # noqa: S101
    return request


def route(path: str, methods: list[str], op: Operation, content_types: list[str] | None = None) -> Callable[..., Any]:
    """Register a view under /api/v1: error boundary, authorizer unless public, OpenAPI entry."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        openapi.register(API + path, methods, op)  # first: a refused operation never becomes a route
        app.route(
            API + path,
            methods=methods,
            authorizer=None if op.public else jwt_auth,
            # On AWS the authorizer names the caller's usage-plan key (API key source AUTHORIZER).
            api_key_required=not op.public,
            content_types=content_types or _default_content_types(methods),
        )(handle_errors(view, _request))
        return view

    return register


def _default_content_types(methods: list[str]) -> list[str]:
    """JSON (a merge patch too for PATCH) for methods that carry a body; anything for GET/DELETE,
    whose body is ignored. Chalice answers a type outside these with 415 before the view runs."""
    if not set(methods) & {"POST", "PUT", "PATCH"}:
        return ["*/*"]
    return list(dict.fromkeys(media for method in methods for media in json_media_types(method)))


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
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _is_chalice_error(response: Response) -> bool:
    return isinstance(response.body, dict) and set(response.body) == {"Code", "Message"}


def _chalice_error_as_problem(response: Response, event: Request) -> Response:
    if response.status_code == 405:  # a method no API Gateway resource can have (TRACE, ...)
        return problem_response(_not_allowed(event.method, event.path), event)
    return problem_response(BY_STATUS.get(response.status_code, AppError)(str(response.body["Message"])), event)


# ---- helpers the views share ---------------------------------------------------------------


def _owner() -> str:
    return str(_request().context["authorizer"]["owner_id"])


def _user() -> str:
    return str(_request().context["authorizer"]["user_id"])


def _json(model: type[Any]) -> Any:
    return parse(model, read_json_object(_request(), settings().max_request_bytes))


def _note_json(model: type[Any]) -> Any:
    """A note body whose text may arrive under an alias (see schemas.BODY_ALIASES)."""
    return parse(model, note_aliases_resolved(read_json_object(_request(), settings().max_request_bytes)))


def _page_query() -> PageQuery:
    params: dict[str, str] = dict(_request().query_params or {})
    return parse(PageQuery, params, prefix="#/query")


def _versioned(body: Any, status: int = 200) -> Response:
    return json_response(body, status, etag(body.version))


# ---- health and auth ---------------------------------------------------------------------


@route(
    "/health",
    ["GET"],
    Operation("Is the service up?", "service", response=Health, public=True, operation_id="getHealth"),
)
def health() -> Response:
    return json_response({"status": "ok"})


@route(
    "/auth/register",
    ["POST"],
    Operation(
        "Register a user", "auth", 201, UserOut, RegisterIn, public=True, problems=(409,), operation_id="register"
    ),
)
def register() -> Response:
    return json_response(services.register(_json(RegisterIn)), 201)


@route(
    "/auth/token",
    ["POST"],
    Operation(
        "Sign in: password for a bearer token",
        "auth",
        200,
        TokenOut,
        TokenForm,
        "form",
        public=True,
        problems=(401,),
        operation_id="signIn",
    ),
    content_types=FORM_TYPES,
)
def token() -> Response:
    current = settings()
    form = parse(TokenForm, read_form(_request(), current.max_request_bytes))
    if form.grant_type not in (None, "", "password"):
        raise BadRequest("Only the password grant is supported.", extra={"error": "unsupported_grant_type"})
    return json_response(services.login(current, form.username, form.password))


@route("/auth/me", ["GET"], Operation("The signed-in user", "auth", response=UserOut, operation_id="getCurrentUser"))
def me() -> Response:
    return json_response(services.current_user(_user()))


# ---- contacts ----------------------------------------------------------------------------


@route(
    "/contacts",
    ["POST"],
    Operation("Create a contact", "contacts", 201, ContactOut, ContactIn, etag=True, operation_id="createContact"),
)
def create_contact() -> Response:
    return _versioned(services.create_contact(settings(), _owner(), _json(ContactIn)), 201)


@route(
    "/contacts",
    ["GET"],
    Operation(
        "List contacts, newest first", "contacts", response=ContactPage, query=PageQuery, operation_id="listContacts"
    ),
)
def list_contacts() -> Response:
    return json_response(services.list_contacts(settings(), _owner(), _page_query()))


@route(
    "/contacts/{contact_id}",
    ["GET"],
    Operation("Get a contact", "contacts", response=ContactOut, etag=True, operation_id="getContact"),
)
def get_contact(contact_id: str) -> Response:
    return _versioned(services.get_contact(_owner(), contact_id))


@route(
    "/contacts/{contact_id}",
    ["PUT"],
    Operation(
        "Replace a contact",
        "contacts",
        200,
        ContactOut,
        ContactIn,
        etag=True,
        if_match=True,
        operation_id="replaceContact",
    ),
)
def replace_contact(contact_id: str) -> Response:
    data = _json(ContactIn)
    version = if_match_version(_request())
    return _versioned(services.replace_contact(settings(), _owner(), contact_id, data, version))


@route(
    "/contacts/{contact_id}",
    ["PATCH"],
    Operation(
        "Change some fields of a contact",
        "contacts",
        200,
        ContactOut,
        ContactPatch,
        etag=True,
        if_match=True,
        operation_id="updateContact",
    ),
)
def patch_contact(contact_id: str) -> Response:
    data = _json(ContactPatch)
    version = if_match_version(_request())
    return _versioned(services.patch_contact(settings(), _owner(), contact_id, data, version))


@route(
    "/contacts/{contact_id}",
    ["DELETE"],
    Operation("Delete a contact and its notes", "contacts", 204, if_match=True, operation_id="deleteContact"),
)
def delete_contact(contact_id: str) -> Response:
    services.delete_contact(_owner(), contact_id, if_match_version(_request()))
    return Response(body="", status_code=204)


# ---- notes -------------------------------------------------------------------------------


@route(
    "/contacts/{contact_id}/notes",
    ["POST"],
    Operation("Add a note to a contact", "notes", 201, NoteOut, NoteIn, etag=True, operation_id="addNoteToContact"),
)
def create_contact_note(contact_id: str) -> Response:
    return _versioned(services.create_note(_owner(), contact_id, _note_json(NoteIn)), 201)


@route(
    "/contacts/{contact_id}/notes",
    ["GET"],
    Operation(
        "List a contact's notes, newest first",
        "notes",
        response=NotePage,
        query=PageQuery,
        operation_id="listContactNotes",
    ),
)
def list_contact_notes(contact_id: str) -> Response:
    return json_response(services.list_notes(settings(), _owner(), contact_id, _page_query()))


@route(
    "/notes",
    ["POST"],
    Operation(
        "Add a note (contact in the body)",
        "notes",
        201,
        NoteOut,
        NoteCreate,
        etag=True,
        problems=(404,),
        operation_id="createNote",
    ),
)
def create_note() -> Response:
    return _versioned(services.create_note_flat(_owner(), _note_json(NoteCreate)), 201)


@route(
    "/notes/{note_id}", ["GET"], Operation("Get a note", "notes", response=NoteOut, etag=True, operation_id="getNote")
)
def get_note(note_id: str) -> Response:
    return _versioned(services.get_note(_owner(), note_id))


def _change_note_text(note_id: str) -> Response:
    """PUT and PATCH of a note do the same: its text is its only field a client sets."""
    data = _note_json(NoteIn)
    return _versioned(services.update_note(_owner(), note_id, data, if_match_version(_request())))


@route(
    "/notes/{note_id}",
    ["PUT"],
    Operation(
        "Replace a note's text", "notes", 200, NoteOut, NoteIn, etag=True, if_match=True, operation_id="replaceNote"
    ),
)
def replace_note(note_id: str) -> Response:
    return _change_note_text(note_id)


@route(
    "/notes/{note_id}",
    ["PATCH"],
    Operation(
        "Change a note's text", "notes", 200, NoteOut, NoteIn, etag=True, if_match=True, operation_id="updateNote"
    ),
)
def update_note(note_id: str) -> Response:
    return _change_note_text(note_id)


@route(
    "/notes/{note_id}", ["DELETE"], Operation("Delete a note", "notes", 204, if_match=True, operation_id="deleteNote")
)
def delete_note(note_id: str) -> Response:
    services.delete_note(_owner(), note_id, if_match_version(_request()))
    return Response(body="", status_code=204)


# ---- docs ------------------------------------------------------------------------------------


def _public_get(path: str) -> Callable[..., Any]:
    """A public GET outside the API's own operations (not in the OpenAPI document)."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        app.route(path, methods=["GET"], content_types=["*/*"])(handle_errors(view, _request))
        return view

    return register


@lru_cache(maxsize=4)
def openapi_document(base: str = "") -> str:
    return json.dumps(openapi.with_base_path(openapi.build_document(app.routes), base), ensure_ascii=False)


def _base_path() -> str:
    """The API Gateway stage prefix this request came through ("/api"), or "" (local, custom domain)."""
    context = _request().context
    stage = str(context.get("stage") or "")
    return f"/{stage}" if stage and str(context.get("path") or "").startswith(f"/{stage}/") else ""


@_public_get("/openapi.json")
def openapi_json() -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json", "Cache-Control": "no-cache"}
    return Response(body=openapi_document(_base_path()), headers=headers)


@_public_get("/docs")
def docs_page() -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": docs.CONTENT_SECURITY_POLICY,
    }
    return Response(body=docs.PAGE, headers=headers)


@_public_get("/docs/{name}")
def docs_asset(name: str) -> Response:
    found = docs.asset(name)
    if found is None:
        raise NotFound("No such docs asset.")
    text, content_type = found
    headers: dict[str, str | list[str]] = {
        "Content-Type": content_type,
        "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": docs.CONTENT_SECURITY_POLICY,
    }
    return Response(body=text, headers=headers)


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
