"""Idempotency-Key on every creating POST (draft-ietf-httpapi-idempotency-key-header).

Powertools' idempotency utility with its DynamoDB persistence layer does the bookkeeping:
the first request with a key writes an INPROGRESS record (one conditional PutItem), runs, and
stores its answer (one UpdateItem); a repeat finds the record in the PutItem's own refusal
(ReturnValuesOnConditionCheckFailure) and gets the stored answer, with no other call. The key
is scoped to the caller: the record's id hashes the user, the workspace, the method, the path
and the key, so equal keys of two callers never meet. The request (a hash of the raw body and
the query) is the validation payload: the same key with another request is a 422.

Only successes are stored (Stripe's rule): a view that raises (every AppError) makes
Powertools delete the INPROGRESS record, and an answer of 400 or more is turned into an
exception here for the same reason, so a retry of a failed request runs again. A hand-made
store was not needed: everything asked of it fits Powertools' hooks (a per-request config for
the Lambda's remaining time, `response_hook` to mark a replay, `key_prefix` for stable ids).

Powertools and boto3 are imported on the first request that sends a key: a request without one
costs nothing more than before, not even at cold start.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Request, Response

from chalicelib.errors import AppError, BadRequest, Conflict

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# The headers of a stored answer that matter to a client; the others are every answer's own.
KEPT_HEADERS = ("ETag", "Location", "Content-Type")
MAX_KEY_LENGTH = 255
# The record's id is "<KEY_PREFIX>#<md5 of the key material>": fixed, so that a renamed Lambda
# function (Powertools' default prefix) does not forget the keys it stored.
KEY_PREFIX = "contact-notes"
IN_PROGRESS_RETRY_AFTER = 1  # seconds: a creating POST takes milliseconds
# DynamoDB's items end at 400 KB: a larger answer (an import's report of thousands of failed
# rows) is answered but not stored, so its retry runs again (an import's rows then skip as
# duplicates) rather than the answer being lost to a failed UpdateItem.
MAX_STORED_BODY_BYTES = 350_000


class KeyReused(AppError):
    """The same Idempotency-Key with another request."""

    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused"


class KeyInUse(Conflict):
    """The first request with this Idempotency-Key has not answered yet."""

    slug, title = "idempotency-key-in-use", "Idempotency-Key in use"


class InvalidKey(BadRequest):
    slug, title = "invalid-idempotency-key", "Invalid Idempotency-Key"


@dataclass(frozen=True)
class Caller:
    user_id: str
    workspace_id: str


class _NotStored(Exception):
    """An answer raised so that Powertools stores nothing for it (its record is deleted): a
    failure (400 or more), or one too large for a DynamoDB item, which a retry runs again."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key: None without one; 400 unless 1-255 printable ASCII characters."""
    key = request.headers.get(HEADER.lower())
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidKey(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    return str(key)


def idempotent(
    view: Callable[..., Response], current: Callable[[], Request], caller: Callable[[], Caller]
) -> Callable[..., Response]:
    """The view, run at most once per caller and Idempotency-Key while the key's record lasts."""

    def guarded(**kwargs: Any) -> Response:
        request = current()
        key = key_of(request)
        if key is None:
            return view(**kwargs)  # exactly as without this wrapper: no store call
        return _run_once(lambda: view(**kwargs), request, caller(), key)

    guarded.__name__ = getattr(view, "__name__", "view")
    guarded.__doc__ = view.__doc__
    return guarded


def _material(request: Request, who: Caller, key: str) -> dict[str, Any]:
    """What names the record (`key`) and what a repeat must match (`request`)."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    return {
        "key": {
            "user": who.user_id,
            "workspace": who.workspace_id,
            "method": request.method,
            "route": request.context.get("resourcePath", ""),
            "params": sorted((request.uri_params or {}).items()),
            "key": key,
        },
        "request": {
            "type": request.headers.get("content-type", ""),
            "body": hashlib.sha256(raw).hexdigest(),
            "query": sorted((request.query_params or {}).items()),
        },
    }


def _run_once(work: Callable[[], Response], request: Request, who: Caller, key: str) -> Response:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency import exceptions as errors

    config = _config(IdempotencyConfig, request)

    @idempotent_function(
        data_keyword_argument="material", persistence_store=_store(config), config=config, key_prefix=KEY_PREFIX
    )
    def answer(material: dict[str, Any]) -> dict[str, Any]:
        response = work()
        stored = _stored(response)
        if response.status_code >= 400 or len(stored["body"].encode()) > MAX_STORED_BODY_BYTES:
            raise _NotStored(response)
        return stored

    try:
        return _replayed(answer(material=_material(request, who, key)))
    except _NotStored as answered:
        return answered.response
    except errors.IdempotencyValidationError:
        raise KeyReused(f"This {HEADER} was first sent with another request; use a new key for this one.") from None
    except (errors.IdempotencyAlreadyInProgressError, errors.IdempotencyInconsistentStateError):
        raise KeyInUse(
            f"A request with this {HEADER} is still running; retry shortly.",
            headers={"Retry-After": str(IN_PROGRESS_RETRY_AFTER)},
        ) from None
    except errors.IdempotencyPersistenceLayerError as exc:
        raise _unavailable(exc) from exc  # anything but an outage: the generic, logged 500


def _stored(response: Response) -> dict[str, Any]:
    """What is kept of a successful answer: status, body, and the headers that matter."""
    body = response.body
    if not isinstance(body, str):
        body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    headers = {name: value for name, value in (response.headers or {}).items() if name in KEPT_HEADERS}
    return {"status": response.status_code, "body": body, "headers": headers}


def _replayed(answer: dict[str, Any]) -> Response:
    headers = dict(answer["headers"])
    if answer.get("replayed"):
        headers[REPLAYED] = "true"
    return Response(body=answer["body"], status_code=int(answer["status"]), headers=headers)


def _mark_replayed(response: Any, record: Any) -> Any:
    """Powertools' hook on an answer taken from the store rather than from running the view."""
    return {**response, "replayed": True}


def _config(config_class: Any, request: Request) -> Any:
    """Per request: the Lambda context (its remaining time) is the request's own, so a record
    left INPROGRESS by a function that timed out or crashed frees its key once that time is up."""
    from chalicelib.runtime import settings

    context = getattr(request, "lambda_context", None)
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        context = _FixedBudget()
    return config_class(
        event_key_jmespath="key",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings().idempotency_expires_after_seconds,
        lambda_context=context,
        response_hook=_mark_replayed,
    )


class _FixedBudget:
    """A stand-in Lambda context where none is given: the API function's timeout (25 s)."""

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


_STORES: dict[tuple[Any, ...], Any] = {}
_STORES_LOCK = threading.Lock()


def _store(config: Any) -> Any:
    """One persistence layer per table, client and lifetime (Powertools configures a layer once,
    from the first config it is given), on the models' one botocore client: its endpoint
    (DYNAMODB_ENDPOINT, moto), timeouts and retries, and no second client to make."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from chalicelib.models import dynamodb_client
    from chalicelib.runtime import settings

    client = dynamodb_client()
    ident = (settings().idempotency_table, id(client), config.expires_after_seconds)
    with _STORES_LOCK:
        store = _STORES.get(ident)
        if store is None:
            store = DynamoDBPersistenceLayer(table_name=ident[0], boto3_client=client)
            store.configure(config, key_prefix=KEY_PREFIX)
            _STORES.clear()  # settings changed (tests): the old layers are of no more use
            _STORES[ident] = store
        return store


def _unavailable(exc: BaseException) -> BaseException:
    """The store's failure under Powertools' wrapper: a 503 when DynamoDB cannot answer now,
    else the failure itself."""
    from chalicelib.outage import as_service_unavailable

    cause = exc.__cause__ or exc
    return as_service_unavailable(cause) or cause
