"""Deleting a workspace under `make run`'s stack: the stream pump feeds the workspaces stream to
the very handler the purge Lambda runs, and the workspace's data goes."""

from __future__ import annotations

import requests

from tests.stack import poll, running_stack, signed_in


def test_a_deleted_workspaces_data_is_swept_end_to_end() -> None:
    with running_stack() as stack:
        api = stack.base + "/api/v1"
        headers = signed_in(stack.base, "owner")
        workspace = requests.post(api + "/workspaces", json={"name": "Doomed"}, headers=headers, timeout=5).json()
        form = {"username": "owner", "password": "long enough", "workspace_id": workspace["id"]}
        token = requests.post(api + "/auth/token", data=form, timeout=10).json()["access_token"]
        inside = {"Authorization": f"Bearer {token}"}
        contact = requests.post(api + "/contacts", json={"first_name": "Gone"}, headers=inside, timeout=5).json()
        note = requests.post(f"{api}/contacts/{contact['id']}/notes", json={"body": "soon"}, headers=inside, timeout=5)
        assert note.status_code == 201
        mine = requests.post(api + "/contacts", json={"first_name": "Kept"}, headers=headers, timeout=5).json()

        assert requests.delete(f"{api}/workspaces/{workspace['id']}", headers=headers, timeout=5).status_code == 204

        def swept() -> bool:
            # The owner's token into the workspace still reads it until it expires: empty once swept.
            page = requests.get(api + "/contacts", headers=inside, timeout=5).json()
            return page["items"] == []

        poll(swept, 20)
        assert requests.get(f"{api}/notes/{note.json()['id']}", headers=inside, timeout=5).status_code == 404
        assert requests.get(f"{api}/contacts/{mine['id']}", headers=headers, timeout=5).status_code == 200
