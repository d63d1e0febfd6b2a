"""Batches (#15): up to 100 contact operations in one request, each answered on its own."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.routing import ApiBlueprint
from chalicelib.errors import ValidationFailed
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.transfer.schemas import MAX_OPERATIONS, BatchIn, BatchOut
from chalicelib.web import json_response, read_json_object

batch_api = ApiBlueprint(__name__)


@batch_api.operation(
    "/contacts/batch",
    ["POST"],
    Operation(
        "Create, upsert, update and delete contacts in one request",
        "contacts",
        200,
        BatchOut,
        BatchIn,
        role="editor",
        operation_id="batchContacts",
        idempotent=True,
        partial=True,
        description=(
            f"At most {MAX_OPERATIONS} operations, applied in order. `upsert` finds its contact by email "
            "(ignoring case) and replaces it as PUT would, or creates one. Each result carries the status the "
            "operation alone would have had (201, 200, 204, 404, 409, 412, 422) and, when it failed, its "
            "problem; one operation's failure never undoes another's. 200 when all succeeded, 207 otherwise."
        ),
    ),
)
def batch_contacts() -> Response:
    from chalicelib.transfer.batch import run_batch

    data = read_json_object(batch_api.request, settings().max_request_bytes)
    operations = data.get("operations")
    unknown = sorted(set(data) - {"operations"})
    if unknown or not isinstance(operations, list) or not operations:
        pointer = f"#/{unknown[0]}" if unknown else "#/operations"
        detail = "unknown field" if unknown else "must be a list of 1 to 100 operations"
        raise ValidationFailed(
            "The request has invalid fields.", errors=[{"pointer": pointer, "detail": detail, "type": "invalid"}]
        )
    status, answer = run_batch(
        settings(), batch_api.owner(), operations, actor=batch_api.user(), shared=batch_api.shared()
    )
    return json_response(answer, status)
