"""Contacts: create, list, read, replace, change and delete (with their notes)."""

from __future__ import annotations

from chalice.app import Response

from chalicelib import services
from chalicelib.api.routing import ApiBlueprint, no_content, versioned
from chalicelib.openapi import Operation
from chalicelib.runtime import settings
from chalicelib.schemas import ContactIn, ContactOut, ContactPage, ContactPatch, PageQuery
from chalicelib.web import if_match_version, json_response

contacts_api = ApiBlueprint(__name__)


@contacts_api.operation(
    "/contacts",
    ["POST"],
    Operation(
        "Create a contact",
        "contacts",
        201,
        ContactOut,
        ContactIn,
        etag=True,
        role="editor",
        operation_id="createContact",
        idempotent=True,
        problems=(409,),
    ),
)
def create_contact() -> Response:
    return versioned(
        services.create_contact(
            settings(),
            contacts_api.owner(),
            contacts_api.body(ContactIn),
            actor=contacts_api.user(),
            shared=contacts_api.shared(),
        ),
        201,
    )


@contacts_api.operation(
    "/contacts",
    ["GET"],
    Operation(
        "List contacts, newest first", "contacts", response=ContactPage, query=PageQuery, operation_id="listContacts"
    ),
)
def list_contacts() -> Response:
    return json_response(services.list_contacts(settings(), contacts_api.owner(), contacts_api.page_query()))


@contacts_api.operation(
    "/contacts/{contact_id}",
    ["GET"],
    Operation("Get a contact", "contacts", response=ContactOut, etag=True, operation_id="getContact"),
)
def get_contact(contact_id: str) -> Response:
    return versioned(services.get_contact(contacts_api.owner(), contact_id))


@contacts_api.operation(
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
        role="editor",
        operation_id="replaceContact",
        problems=(409,),
    ),
)
def replace_contact(contact_id: str) -> Response:
    data = contacts_api.body(ContactIn)
    version = if_match_version(contacts_api.request, contact_id)
    return versioned(
        services.replace_contact(settings(), contacts_api.owner(), contact_id, data, version, actor=contacts_api.user())
    )


@contacts_api.operation(
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
        role="editor",
        operation_id="updateContact",
        problems=(409,),
    ),
)
def patch_contact(contact_id: str) -> Response:
    data = contacts_api.body(ContactPatch)
    version = if_match_version(contacts_api.request, contact_id)
    return versioned(
        services.patch_contact(settings(), contacts_api.owner(), contact_id, data, version, actor=contacts_api.user())
    )


@contacts_api.operation(
    "/contacts/{contact_id}",
    ["DELETE"],
    Operation(
        "Delete a contact and its notes", "contacts", 204, if_match=True, role="editor", operation_id="deleteContact"
    ),
)
def delete_contact(contact_id: str) -> Response:
    version = if_match_version(contacts_api.request, contact_id)
    services.delete_contact(contacts_api.owner(), contact_id, version, actor=contacts_api.user())
    return no_content()
