"""One contact per email within a workspace (#15), enforced by DynamoDB, through HTTP over moto.

A contact's email is claimed (lower-cased) in the same transaction that writes the contact,
on the condition that nobody holds it; changing or removing the email moves or releases the
claim in one transaction, and deleting the contact releases it.
"""

from __future__ import annotations

from typing import Any

from chalice.test import Client

from chalicelib.models import ContactEmail
from tests.conftest import Api, CallCounter, before_first, problem
from tests.workspaces import acting_in, add, new_workspace, removal


def _taken(reply: Any, holder: dict[str, Any]) -> None:
    body = problem(reply, 409)
    assert body["existing_id"] == holder["id"], body
    assert "email" in body["detail"]


def test_a_taken_email_is_a_409_naming_the_contact_that_has_it_whatever_its_case(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "Ada@Example.org"}).json
    _taken(alice.post("/contacts", {"first_name": "Other", "email": "ada@example.ORG"}), ada)
    assert [c["id"] for c in alice.get("/contacts").json["items"]] == [ada["id"]]  # nothing half-made


def test_contacts_without_an_email_are_never_duplicates(alice: Api) -> None:
    for name in ("A", "B", "C"):
        assert alice.post("/contacts", {"first_name": name}).status == 201
    assert alice.post("/contacts", {"first_name": "D", "email": None}).status == 201


def test_the_same_email_in_another_workspace_is_another_contact(alice: Api, bob: Api) -> None:
    assert alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).status == 201
    assert bob.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).status == 201
    team = acting_in(alice, new_workspace(alice))
    assert team.post("/contacts", {"first_name": "Ada", "email": "ADA@example.org"}).status == 201


def test_put_and_patch_to_a_taken_email_are_409s_and_change_nothing(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    bea = alice.post("/contacts", {"first_name": "Bea", "email": "bea@example.org"}).json
    _taken(alice.patch(f"/contacts/{bea['id']}", {"email": "ADA@example.org"}), ada)
    _taken(alice.put(f"/contacts/{bea['id']}", {"first_name": "Bea", "email": "ada@example.org"}), ada)
    assert alice.get(f"/contacts/{bea['id']}").json == bea  # same version, same email
    # and bea still holds her own: nobody else can take it
    _taken(alice.post("/contacts", {"first_name": "X", "email": "bea@example.org"}), bea)


def test_a_new_email_frees_the_old_one_and_so_do_removing_it_and_deleting_the_contact(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "one@example.org"}).json
    moved = alice.patch(f"/contacts/{ada['id']}", {"email": "two@example.org"})
    assert moved.status == 200 and moved.json["email"] == "two@example.org"
    assert moved.json["version"] == ada["version"] + 1
    assert alice.post("/contacts", {"first_name": "B", "email": "one@example.org"}).status == 201
    _taken(alice.post("/contacts", {"first_name": "C", "email": "two@example.org"}), ada)

    cleared = alice.put(f"/contacts/{ada['id']}", {"first_name": "Ada"})  # PUT without email removes it
    assert cleared.status == 200 and cleared.json["email"] is None
    assert alice.post("/contacts", {"first_name": "C", "email": "two@example.org"}).status == 201

    dee = alice.post("/contacts", {"first_name": "Dee", "email": "three@example.org"}).json
    merge = {"content-type": "application/merge-patch+json"}  # RFC 7396: null removes
    assert alice.patch(f"/contacts/{dee['id']}", {"email": None}, headers=merge).status == 200
    assert alice.post("/contacts", {"first_name": "E", "email": "three@example.org"}).status == 201

    eve = alice.post("/contacts", {"first_name": "Eve", "email": "four@example.org"}).json
    assert alice.delete(f"/contacts/{eve['id']}").status == 204
    assert alice.get(f"/contacts/{eve['id']}").status == 404
    assert alice.post("/contacts", {"first_name": "F", "email": "four@example.org"}).status == 201


def test_resending_the_same_email_in_another_case_is_one_update(alice: Api, dynamodb: CallCounter) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    dynamodb.reset()
    reply = alice.put(f"/contacts/{ada['id']}", {"first_name": "Ada L.", "email": "ADA@example.org"})
    assert reply.status == 200 and reply.json["email"] == "ADA@example.org"
    assert dynamodb.by_operation() == {"UpdateItem": 1}  # and the limiter's
    _taken(alice.post("/contacts", {"first_name": "X", "email": "ada@EXAMPLE.org"}), ada)


def test_what_each_write_costs(alice: Api, dynamodb: CallCounter) -> None:
    dynamodb.reset()
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    assert dynamodb.by_operation() == {"TransactWriteItems": 1}  # the contact and its claim
    dynamodb.reset()
    assert alice.patch(f"/contacts/{ada['id']}", {"email": "lovelace@example.org"}).status == 200
    # The update conditional on the email being the same fails; a read, then the move (the
    # answer is what the move wrote: not read back).
    assert dynamodb.by_operation() == {"UpdateItem": 1, "GetItem": 1, "TransactWriteItems": 1}
    dynamodb.reset()
    assert alice.delete(f"/contacts/{ada['id']}").status == 204
    # The first transaction expects no email: its failed condition hands the contact back, which
    # is deleted as stored with its claim and the deleter's mark.
    assert dynamodb.by_operation() == {"TransactWriteItems": 2}
    dynamodb.reset()
    plain = alice.post("/contacts", {"first_name": "Plain"}).json
    assert alice.delete(f"/contacts/{plain['id']}").status == 204
    # without an email: one call each (the delete a transaction with the deleter's mark)
    assert dynamodb.by_operation() == {"PutItem": 1, "TransactWriteItems": 1}


def test_if_match_and_missing_contacts_answer_as_before(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    stale = {"If-Match": '"99"'}
    assert problem(alice.patch(f"/contacts/{ada['id']}", {"email": "x@example.org"}, headers=stale), 412)
    assert problem(alice.delete(f"/contacts/{ada['id']}", headers=stale), 412)
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert problem(alice.patch(f"/contacts/{missing}", {"email": "x@example.org"}), 404)
    assert problem(alice.delete(f"/contacts/{missing}"), 404)
    assert alice.post("/contacts", {"first_name": "X", "email": "x@example.org"}).status == 201  # nothing claimed


def test_an_email_claimed_between_the_read_and_the_move_is_a_409(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    holder: dict[str, Any] = {}

    def competing() -> None:
        holder.update(alice.post("/contacts", {"first_name": "Quick", "email": "new@example.org"}).json)

    with before_first("TransactWriteItems", competing):
        reply = alice.patch(f"/contacts/{ada['id']}", {"email": "new@example.org"})
    _taken(reply, holder)
    assert alice.get(f"/contacts/{ada['id']}").json["email"] == "ada@example.org"  # the move did not happen
    _taken(alice.post("/contacts", {"first_name": "X", "email": "ada@example.org"}), ada)  # still hers


def test_a_deleted_workspaces_sweep_releases_its_emails(alice: Api, bob: Api, chalice_client: Client) -> None:
    from chalicelib.models import Workspace

    workspace_id = new_workspace(alice)
    add(alice, workspace_id, "bob", "editor")
    team = acting_in(bob, workspace_id)
    assert team.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).status == 201
    item = Workspace.get(workspace_id, consistent_read=True)
    assert alice.delete(f"/workspaces/{workspace_id}").status == 204
    payload = chalice_client.lambda_.invoke("purge_workspaces", {"Records": [removal(item)]}).payload
    assert payload == {"batchItemFailures": []}
    assert ContactEmail.count(workspace_id) == 0


def test_a_contact_without_an_email_given_a_taken_one_gets_the_409_naming_its_holder(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    plain = alice.post("/contacts", {"first_name": "Plain"}).json
    _taken(alice.patch(f"/contacts/{plain['id']}", {"email": "ADA@example.org"}), ada)
    _taken(alice.put(f"/contacts/{plain['id']}", {"first_name": "Plain", "email": "ada@example.org"}), ada)
    assert alice.get(f"/contacts/{plain['id']}").json == plain


def test_a_note_added_while_a_contact_with_an_email_is_deleted_goes_with_it(alice: Api) -> None:
    """The first note marks its contact without a new version: the delete's transaction
    requires the mark as it read it, reads again, and sweeps the note."""
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json
    added: dict[str, Any] = {}

    def note_meanwhile() -> None:
        added.update(alice.post(f"/contacts/{ada['id']}/notes", {"body": "just in time"}).json)

    with before_first("TransactWriteItems", note_meanwhile):
        assert alice.delete(f"/contacts/{ada['id']}").status == 204
    assert added["id"]
    assert alice.get(f"/notes/{added['id']}").status == 404  # swept, not orphaned
    assert alice.post("/contacts", {"first_name": "New", "email": "ada@example.org"}).status == 201


def test_a_contact_deleted_while_its_email_moves_is_a_404(alice: Api) -> None:
    ada = alice.post("/contacts", {"first_name": "Ada", "email": "ada@example.org"}).json

    def deleted_meanwhile() -> None:
        assert alice.delete(f"/contacts/{ada['id']}").status == 204

    with before_first("TransactWriteItems", deleted_meanwhile):
        reply = alice.patch(f"/contacts/{ada['id']}", {"email": "new@example.org"})
    problem(reply, 404)
    for email in ("ada@example.org", "new@example.org"):  # neither is held by anyone now
        assert alice.post("/contacts", {"first_name": "X", "email": email}).status == 201
