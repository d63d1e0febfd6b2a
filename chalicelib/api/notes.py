"""Notes on contacts: add (two ways), list, read, change and delete."""

from __future__ import annotations

from chalice.app import Response

from chalicelib import services
from chalicelib.api.routing import ApiBlueprint, no_content, versioned
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import NoteCreate, NoteIn, NoteOut, NotePage, PageQuery
from chalicelib.web import if_match_version, json_response

notes_api = ApiBlueprint(__name__)


@notes_api.operation(
    "/contacts/{contact_id}/notes",
    ["POST"],
    Operation(
        "Add a note to a contact",
        "notes",
        201,
        NoteOut,
        NoteIn,
        etag=True,
        role="editor",
        operation_id="addNoteToContact",
        idempotent=True,
    ),
)
def create_contact_note(contact_id: str) -> Response:
    return versioned(
        services.create_note(
            notes_api.owner(),
            contact_id,
            notes_api.note_body(NoteIn),
            actor=notes_api.user(),
            shared=notes_api.shared(),
        ),
        201,
    )


@notes_api.operation(
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
    return json_response(services.list_notes(settings(), notes_api.owner(), contact_id, notes_api.page_query()))


@notes_api.operation(
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
        role="editor",
        operation_id="createNote",
        idempotent=True,
    ),
)
def create_note() -> Response:
    return versioned(
        services.create_note_flat(
            notes_api.owner(), notes_api.note_body(NoteCreate), actor=notes_api.user(), shared=notes_api.shared()
        ),
        201,
    )


@notes_api.operation(
    "/notes/{note_id}", ["GET"], Operation("Get a note", "notes", response=NoteOut, etag=True, operation_id="getNote")
)
def get_note(note_id: str) -> Response:
    return versioned(services.get_note(notes_api.owner(), note_id))


def _change_note_text(note_id: str) -> Response:
    """PUT and PATCH of a note do the same: its text is its only field a client sets."""
    data = notes_api.note_body(NoteIn)
    version = if_match_version(notes_api.request, note_id)
    return versioned(services.update_note(notes_api.owner(), note_id, data, version, actor=notes_api.user()))


@notes_api.operation(
    "/notes/{note_id}",
    ["PUT"],
    Operation(
        "Replace a note's text",
        "notes",
        200,
        NoteOut,
        NoteIn,
        etag=True,
        if_match=True,
        role="editor",
        operation_id="replaceNote",
    ),
)
def replace_note(note_id: str) -> Response:
    return _change_note_text(note_id)


@notes_api.operation(
    "/notes/{note_id}",
    ["PATCH"],
    Operation(
        "Change a note's text",
        "notes",
        200,
        NoteOut,
        NoteIn,
        etag=True,
        if_match=True,
        role="editor",
        operation_id="updateNote",
    ),
)
def update_note(note_id: str) -> Response:
    return _change_note_text(note_id)


@notes_api.operation(
    "/notes/{note_id}",
    ["DELETE"],
    Operation("Delete a note", "notes", 204, if_match=True, role="editor", operation_id="deleteNote"),
)
def delete_note(note_id: str) -> Response:
    version = if_match_version(notes_api.request, note_id)
    services.delete_note(notes_api.owner(), note_id, version, actor=notes_api.user())
    return no_content()
