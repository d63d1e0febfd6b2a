"""Request and response shapes of POST /imports and POST /contacts/batch."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.schemas import ContactIn, ContactPatch, Problem, _Input, _Model
from chalicelib.transfer.records import CONTACT_FIELDS, MAX_BYTES, MAX_ROWS

MAPPABLE = (*CONTACT_FIELDS, "notes")


def _mapping(value: str | None) -> str | None:
    """A JSON object naming, for some of our fields, the file's column that holds it."""
    if value is None:
        return None
    try:
        mapping = json.loads(value)
    except ValueError:
        raise ValueError('must be a JSON object, e.g. {"first_name": "Vorname"}') from None
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError("must be a non-empty JSON object of our field names to your column names")
    unknown = sorted(set(mapping) - set(MAPPABLE))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; map any of: {', '.join(MAPPABLE)}")
    if not all(isinstance(column, str) and column.strip() for column in mapping.values()):
        raise ValueError("each field must name a column (a non-empty string)")
    return value


class ImportQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    format: Literal["csv", "vcard", "json"] | None = Field(
        default=None,
        description="The file's format; by default taken from Content-Type (text/csv, text/vcard, text/x-vcard, "
        "text/directory, application/json).",
    )
    dry_run: bool = Field(
        default=False, description="Validate and answer the report the real import would give; write nothing."
    )
    on_conflict: Literal["skip", "update"] = Field(
        default="skip",
        description="Rows whose email (ignoring case) a contact of the workspace, or an earlier row, already has: "
        "skip them, or update that contact with the row's non-empty fields and add its notes.",
    )
    mapping: Annotated[str, StringConstraints(max_length=4000), AfterValidator(_mapping)] | None = Field(
        default=None,
        description="CSV only: a JSON object naming the column of some of our fields, when the header is not "
        f'recognised, e.g. {{"first_name": "Vorname", "notes": "Bemerkung"}}. Fields: {", ".join(MAPPABLE)}.',
        # Published as a JSON-valued parameter (OpenAPI `content`), so clients know its shape.
        json_schema_extra={
            "x-json-content": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"enum": list(MAPPABLE)},
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "[^ ]"},
            }
        },
    )

    def mapping_object(self) -> dict[str, str] | None:
        return json.loads(self.mapping) if self.mapping else None


class ImportRowError(_Model):
    row: int = Field(description="As a spreadsheet shows it (header = 1); a vCard's card number; a JSON contact's.")
    field: str | None = Field(default=None, description="The field at fault, when one is.")
    detail: str


class ImportReport(_Model):
    created: int = Field(description="Contacts created.")
    updated: int = Field(description="Rows that updated a contact (on_conflict=update).")
    skipped: int = Field(description="Rows whose email a contact or an earlier row already had (on_conflict=skip).")
    failed: int = Field(description="Rows not imported; `errors` says why.")
    notes_created: int
    errors: list[ImportRowError] = Field(description="In row order.")
    dry_run: bool = Field(description="True: nothing was written; the counts are what the import would do.")


IMPORT_DESCRIPTION = (
    "The file is the body, sent as text/csv, text/vcard, application/json (this API's JSON export) or "
    "application/octet-stream (the format then named by `format`, or read from the file's start). "
    f"At most {MAX_ROWS:,} rows and {MAX_BYTES // 1024 // 1024} MB (more: 413, split it; "
    "the CLI does). CSV from Google Contacts (current and legacy), Outlook, this API's export or any header with "
    "common column names (or `mapping`); vCard 3.0 and 4.0; this API's JSON export. UTF-8 (with or without BOM), "
    "UTF-16 with BOM, or Windows-1252. A bad row is reported in `errors` and the others go in; each row is written "
    "whole or not at all. A Notes column (vCard NOTE) becomes a note."
)


# ---- batch ---------------------------------------------------------------------------------

MAX_OPERATIONS = 100


class CreateOp(_Input):
    op: Literal["create"]
    contact: ContactIn


class UpsertOp(_Input):
    op: Literal["upsert"]
    contact: ContactIn = Field(description="Must have an email: the contact with it is replaced, or one is created.")


class UpdateOp(_Input):
    op: Literal["update"]
    id: str = Field(examples=["01JD3Z8Q4X5W6V7T8S9R0P1N2M"])
    contact: ContactPatch
    version: int | None = Field(default=None, ge=1, description="Only if the contact is still at this version.")


class DeleteOp(_Input):
    op: Literal["delete"]
    id: str = Field(examples=["01JD3Z8Q4X5W6V7T8S9R0P1N2M"])
    version: int | None = Field(default=None, ge=1, description="Only if the contact is still at this version.")


Operation = Annotated[CreateOp | UpsertOp | UpdateOp | DeleteOp, Field(discriminator="op")]


def _operations_schema(schema: dict[str, Any]) -> None:
    """Each operation is checked on its own (a bad one is a 422 in its result, the others run),
    so the request schema constrains no item: whatever an item is, the request is accepted and
    that item answered. The variants are in the description (a union of four would also be a
    refusal the server does not make)."""
    schema["properties"]["operations"]["items"] = {
        "description": "An operation: an object with `op` (create, upsert, update or delete) and its fields."
    }


class BatchIn(_Input):
    """Each operation is validated and answered on its own (`results`); operations are applied in order."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: _operations_schema(schema))

    operations: list[Operation] = Field(
        min_length=1,
        max_length=MAX_OPERATIONS,
        examples=[
            [
                {"op": "create", "contact": {"first_name": "John", "email": "john@example.com"}},
                {"op": "upsert", "contact": {"first_name": "Jane", "email": "jane@example.com", "title": "CTO"}},
            ]
        ],
        description=f"At most {MAX_OPERATIONS} (more: 413), applied in order, each one of: "
        '`{"op": "create", "contact": {...as POST /contacts}}`; `{"op": "upsert", "contact": {...with an email}}`; '
        '`{"op": "update", "id": "...", "contact": {...as PATCH}, "version"?: 3}`; '
        '`{"op": "delete", "id": "...", "version"?: 3}`. An operation that is invalid is answered 422 in its '
        "result; the others still run.",
    )


class BatchResult(_Model):
    index: int = Field(description="The operation's position in the request, from 0.")
    status: int = Field(description="The HTTP status this operation alone would have had: 201, 200, 204, 404, ...")
    id: str | None = Field(default=None, description="The contact's id, when there is one.")
    problem: Problem | None = Field(default=None, description="Why it failed (RFC 9457), when it did.")


class BatchOut(_Model):
    results: list[BatchResult] = Field(description="One per operation, in request order.")
