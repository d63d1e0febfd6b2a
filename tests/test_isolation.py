"""A second user can neither read, change, delete nor list the first user's data."""

from __future__ import annotations

from tests.conftest import Api, problem


def test_another_users_contacts_and_notes_are_404(alice: Api, bob: Api) -> None:
    contact = alice.post("/contacts", {"first_name": "Secret", "email": "s@example.com"}).json
    note = alice.post(f"/contacts/{contact['id']}/notes", {"body": "private"}).json
    c, n = f"/contacts/{contact['id']}", f"/notes/{note['id']}"

    attempts = [
        bob.get(c),
        bob.put(c, {"first_name": "Hacked"}),
        bob.patch(c, {"first_name": "Hacked"}),
        bob.get(f"{c}/notes"),
        bob.post(f"{c}/notes", {"body": "planted"}),
        bob.post("/notes", {"contact_id": contact["id"], "body": "planted"}),
        bob.get(n),
        bob.put(n, {"body": "hacked"}),
        bob.patch(n, {"body": "hacked"}),
        bob.delete(n),
        bob.delete(c),
    ]
    for reply in attempts:
        body = problem(reply, 404)
        assert "Secret" not in reply.body.decode() and "private" not in reply.body.decode()
        assert body["title"] == "Not found"

    # Bob's answers for Alice's items match those for items that never existed.
    missing = problem(bob.get("/contacts/01M8FP1CYTGFW5FGC7TXSJ3ETH"), 404)
    assert problem(bob.get(c), 404)["detail"] == missing["detail"]

    assert bob.get("/contacts").json == {"items": [], "next_cursor": None}
    # Alice's data is untouched.
    assert alice.get(c).json == contact
    assert alice.get(n).json == note
    assert [x["id"] for x in alice.get(f"{c}/notes").json["items"]] == [note["id"]]


def test_bob_sees_only_his_own_list(alice: Api, bob: Api) -> None:
    alice.post("/contacts", {"first_name": "A1"})
    mine = bob.post("/contacts", {"first_name": "B1"}).json
    assert [x["id"] for x in bob.get("/contacts").json["items"]] == [mine["id"]]
    assert [x["first_name"] for x in alice.get("/contacts").json["items"]] == ["A1"]
