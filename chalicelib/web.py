"""The HTTP edge: reading request bodies, shaping responses, and RFC 9457 problems.

Every error a client can see is rendered by `problem_response`; views are wrapped by
`handle_errors` so that no exception leaves a view as Chalice's own 500 body.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from chalice.app import Request, Response
from pydantic import BaseModel, ValidationError

from chalicelib.errors import (
    AppError,
    BadRequest,
    MalformedJson,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from chalicelib.ids import ULID_PATTERN, is_valid_id
from chalicelib.outage import as_service_unavailable
from chalicelib.schemas import body_alias_keys

logger = logging.getLogger("contact_notes")

PROBLEM_JSON = "application/problem+json"
JSON_TYPES = ["application/json"]
MERGE_PATCH = "application/merge-patch+json"
# A PATCH body is a JSON merge patch (RFC 7396: null removes a field), accepted under either name.
MERGE_PATCH_TYPES = [*JSON_TYPES, MERGE_PATCH]
FORM_TYPES = ["application/x-www-form-urlencoded"]
# The methods an API Gateway REST API can define on a resource (ANY aside).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

M = TypeVar("M", bound=BaseModel)


def add_vary(headers: dict[str, Any], name: str) -> None:
    """Add a field name to Vary, keeping those already there (CORS adds Origin)."""
    present = str(headers.get("Vary", ""))
    names = [part.strip() for part in present.split(",") if part.strip()]
    if not any(part.lower() == name.lower() for part in names):
        headers["Vary"] = ", ".join([*names, name])


def request_id(request: Request | None) -> str:
    """API Gateway's request id; the local gateway has none, so one is made and kept."""
    if request is None:
        return str(uuid.uuid4())
    context = request.context
    if not context.get("requestId"):
        context["requestId"] = str(uuid.uuid4())
    return str(context["requestId"])


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = (
        body.model_dump_json()
        if isinstance(body, BaseModel)
        else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    )
    return Response(
        body=text,
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def problem_body(error: AppError, request: Request | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if request is not None:
        body["instance"] = _instance(request)
    body["request_id"] = request_id(request)
    if error.errors:
        body["errors"] = error.errors
    body.update(error.extra)
    return body


def _instance(request: Request) -> str:
    """The path the client called (the gateway's, stage included), not the route template."""
    return str(request.context.get("path") or request.path)


def problem_response(error: AppError, request: Request | None) -> Response:
    return Response(
        body=json.dumps(problem_body(error, request), ensure_ascii=False),
        status_code=error.status,
        headers={"Content-Type": PROBLEM_JSON, **error.headers},
    )


def handle_errors(view: Callable[..., Response], current: Callable[[], Request]) -> Callable[..., Response]:
    """Wrap a view: AppError becomes its problem; a store outage a 503; anything else a logged, generic 500."""

    @functools.wraps(view)
    def wrapper(**kwargs: Any) -> Response:
        request = current()
        try:
            return view(**kwargs)
        except AppError as error:
            return problem_response(error, request)
        except Exception as exc:
            unavailable = as_service_unavailable(exc)  # a store outage some code did not translate
            if unavailable is not None:
                return problem_response(unavailable, request)
            logger.exception("unhandled error", extra={"request_id": request_id(request), "path": request.path})
            return problem_response(AppError("An unexpected error occurred."), request)

    return wrapper


# ---- reading requests ------------------------------------------------------------------


def media_type(request: Request) -> str:
    return str(request.headers.get("content-type", "")).split(";")[0].strip().lower()


def raw_body(request: Request, max_bytes: int, advice: str = "") -> bytes:
    """The body's bytes; PayloadTooLarge (with `advice` after the limit) above max_bytes."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.{advice}")
    return raw


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A mapping from key-value pairs; a key given twice is an error (JSON objects and forms)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def json_media_types(method: str) -> list[str]:
    """The media types a JSON body may be sent as with this method (the route's and the check's)."""
    return MERGE_PATCH_TYPES if method.upper() == "PATCH" else JSON_TYPES


def read_json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object: 415, 413, 400 or 422 when it is not one."""
    accepted = json_media_types(request.method)
    if media_type(request) not in accepted:
        raise UnsupportedMediaType(f"Send the body as {' or '.join(accepted)}.")
    raw = raw_body(request, max_bytes)
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedJson(f"The body is not valid JSON: {_short(exc)}") from None
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    return data


def _short(exc: Exception) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) <= 200 else text[:200] + "…"


def read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """An application/x-www-form-urlencoded body; a repeated parameter is a 400 (RFC 6749 §3.2)."""
    if media_type(request) not in FORM_TYPES:
        raise UnsupportedMediaType("Send the body as application/x-www-form-urlencoded.")
    raw = raw_body(request, max_bytes)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("The form body is not valid UTF-8 form encoding.") from None
    try:
        return _unique_keys(pairs)
    except _DuplicateKey as repeated:
        raise BadRequest(f"The parameter {repeated.key!r} is repeated.") from None


MAX_REPORTED_ERRORS = 20


def validation_errors(exc: ValidationError, prefix: str = "#") -> list[dict[str, Any]]:
    """Pydantic errors as RFC 9457 extension members: pointer, detail, type (no input echoed).

    At most MAX_REPORTED_ERRORS are listed, so a body with thousands of bad fields cannot
    make an error response larger than the request (or than Lambda's 6 MB response limit).
    """
    problems = []
    errors = exc.errors(include_input=False, include_url=False)
    for err in errors[:MAX_REPORTED_ERRORS]:
        pointer = prefix + "".join(f"/{part}" for part in err["loc"])
        problems.append({"pointer": pointer, "detail": err["msg"], "type": err["type"]})
    if len(errors) > MAX_REPORTED_ERRORS:
        problems.append({"pointer": prefix, "detail": f"{len(errors) - MAX_REPORTED_ERRORS} more", "type": "truncated"})
    return problems


def parse(model: type[M], data: dict[str, Any], prefix: str = "#") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("The request has invalid fields.", errors=validation_errors(exc, prefix)) from None


def note_aliases_resolved(data: dict[str, Any]) -> dict[str, Any]:
    """Move a note's text from whichever alias carried it to `body`; two aliases are a 422."""
    keys = body_alias_keys(data)
    if len(keys) > 1:
        keys = keys[:MAX_REPORTED_ERRORS]
        names = " and ".join(repr(k) for k in keys)
        raise ValidationFailed(
            f"The note's text was sent twice, as {names}; send one of them.",
            errors=[
                {"pointer": f"#/{k}", "detail": "conflicting alias for body", "type": "alias_conflict"} for k in keys
            ],
        )
    if keys and keys[0] != "body":
        data = dict(data)
        data["body"] = data.pop(keys[0])
    return data


# An item's ETag is "<id>-<version>" (strong: it changes with every write, and names the item, so
# two items' ETags never match). The bare version ("3", 3, W/"3") is what earlier releases issued:
# still accepted in If-Match for one more release (README, "Caching and conditional requests").
_ID = ULID_PATTERN.strip("^$")
_ITEM_TAG = re.compile(rf'"(?P<id>{_ID})-(?P<version>[0-9]{{1,18}})"')
IF_MATCH_PATTERN = rf'^(\*|(W/)?"{_ID}-[0-9]{{1,18}}"|(W/)?"?[0-9]{{1,18}}"?)$'  # published in OpenAPI as is
# The part of If-None-Match this API reads: each entity-tag of the list (RFC 9110 §8.8.3).
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def if_match_version(request: Request, item_id: str) -> int | None:
    """The version of item `item_id` that If-Match names; None when absent or '*'.

    Accepted: this item's ETag ("<id>-3"), or, deprecated, the bare version ("3", W/"3" or 3).
    A header of no such form is a 400 (malformed); another item's ETag is a 412 here, and a
    well-formed one naming another version of this item a 412 where the conditional write fails.
    """
    value = request.headers.get("if-match")
    if value is None:
        return None
    text = value.strip()  # HTTP strips surrounding whitespace from field values
    if not re.fullmatch(IF_MATCH_PATTERN, text):
        raise BadRequest('If-Match must be an ETag this API issued, such as "01J9Z3...-3" (or *).')
    if text == "*":
        return None
    tagged = _ITEM_TAG.fullmatch(text.removeprefix("W/"))
    if tagged is None:
        return int(text.removeprefix("W/").strip('"'))  # the deprecated bare version
    if tagged["id"] != item_id:
        if not is_valid_id(item_id):
            raise NotFound("Not found.")  # no such item can exist: 404 first, as without the header
        raise PreconditionFailed("If-Match names another item's ETag.")
    return int(tagged["version"])


def item_etag(item_id: str, version: int) -> str:
    """An item's strong ETag: its id and version (cheap: no hash of the body)."""
    return f'"{item_id}-{version}"'


def etag(item_id: str, version: int) -> dict[str, str]:
    return {"ETag": item_etag(item_id, version)}


def weak_etag(body: Any) -> str:
    """A weak ETag over a page's serialized body (lists, search, exports)."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body, separators=(",", ":")).encode()
    return f'W/"{hashlib.sha256(data).hexdigest()[:32]}"'


def none_match(header: str | None, tag: str) -> bool:
    """Whether If-None-Match fails for a representation with this ETag (RFC 9110 §13.1.2):
    `*`, or any listed entity-tag equal to it by weak comparison. An absent header, or one with
    no entity-tag in it, never does (the request is answered as if unconditional)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(f'"{match[1]}"' == opaque for match in _ENTITY_TAG.findall(header))


def conditional_get(request: Request, response: Response) -> Response:
    """A successful read's answer with its ETag (a weak one over the body when the view gave
    none); a 304 with no body when If-None-Match names it. 304 carries the ETag; the edge adds
    Cache-Control and Vary to both (app.py)."""
    if response.status_code != 200:
        return response
    tag = response.headers.get("ETag")
    if not isinstance(tag, str):
        tag = weak_etag(response.body)
        response.headers["ETag"] = tag
    if none_match(request.headers.get("if-none-match"), tag):
        return Response(body="", status_code=304, headers={"ETag": tag})
    return response


# ---- the authorizer's denial -----------------------------------------------------------


def unauthorized_error() -> Exception:
    """What the authorizer raises to deny a request with 401.

    API Gateway answers 401 when a TOKEN authorizer fails with the message "Unauthorized"
    (and renders the UNAUTHORIZED gateway response from infra/). Chalice's local gateway
    (`make run`, chalice.test.Client) would let that exception escape instead, so when it
    is running we raise its own NotAuthorizedError, which it turns into the same 401.
    """
    import sys

    local = sys.modules.get("chalice.local")  # present only under the local gateway
    if local is None:
        return Exception("Unauthorized")
    denied = problem_response(Unauthorized("A valid bearer token is required."), None)
    error: Exception = local.NotAuthorizedError(denied.headers, denied.body.encode())
    error.args = ("Unauthorized",)
    return error
