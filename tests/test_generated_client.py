"""A Python client generated from the committed openapi.json (openapi-python-client) works.

The client is generated into a temporary folder, imported from there, and drives the README's
flow against the local stack through the generated functions, whose names are the document's
operationIds: register, signIn, createContact, addNoteToContact, listContacts,
listContactNotes, updateContact, and getContact answering a typed Problem for a missing id.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.stack import Stack

# Not the name of anything importable here (contactnotes_client is the repository's own helper).
PACKAGE = "contact_notes_generated"
BIN = Path(sys.executable).parent
UNKNOWN_ID = "01M8FP1CYTGFW5FGC7TXSJ3ETH"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated package's parent folder, on sys.path for the module's tests."""
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} already names a module"
    folder = tmp_path_factory.mktemp("generated-client")
    config = folder / "config.json"
    config.write_text(json.dumps({"package_name_override": PACKAGE}))
    # --path reads the committed file; the generator goes to the network only when given --url.
    # Its post-hooks run ruff by name: the virtualenv's, pinned, found first on PATH.
    command = [str(BIN / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi.json"),
               "--output-path", str(folder / PACKAGE), "--meta", "none", "--config", str(config)]  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=180, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output and "not in PATH" not in output, output  # nothing skipped, hooks ran
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_every_generated_module_imports(generated: Path) -> None:
    modules = sorted(path for path in (generated / PACKAGE).rglob("*.py"))
    assert len(modules) > 20
    for path in modules:
        name = ".".join(path.relative_to(generated).with_suffix("").parts).removesuffix(".__init__")
        importlib.import_module(name)


def test_readme_flow_through_the_generated_functions(generated: Path, shared_stack: Stack) -> None:
    client_module, models = _module("client"), _module("models")
    anonymous = client_module.Client(base_url=shared_stack.base, raise_on_unexpected_status=True)

    user = _module("api.auth.register").sync(
        client=anonymous,
        body=models.RegisterIn(username="generated_client", email="gen@example.com", password="generated password"),
    )
    assert isinstance(user, models.UserOut) and user.username == "generated_client"
    token = _module("api.auth.sign_in").sync(
        client=anonymous, body=models.TokenForm(username="generated_client", password="generated password")
    )
    assert isinstance(token, models.TokenOut) and token.token_type == "bearer"

    sent: list[httpx.Request] = []
    signed_in = client_module.AuthenticatedClient(
        base_url=shared_stack.base,
        token=token.access_token,
        raise_on_unexpected_status=True,
        httpx_args={"event_hooks": {"request": [sent.append]}},
    )
    readme_contact = {"first_name": "John", "last_name": "Doe", "email": "john@example.com",
                      "phone": "1234567890", "company": "Example Corp", "title": "Developer"}  # fmt: skip
    contact = _module("api.contacts.create_contact").sync(client=signed_in, body=models.ContactIn(**readme_contact))
    assert isinstance(contact, models.ContactOut)
    assert (contact.first_name, contact.company, contact.version) == ("John", "Example Corp", 1)

    note = _module("api.notes.add_note_to_contact").sync(
        contact_id=contact.id, client=signed_in, body=models.NoteIn(body="Met at the conference.")
    )
    assert isinstance(note, models.NoteOut) and note.contact_id == contact.id
    contacts = _module("api.contacts.list_contacts").sync(client=signed_in)
    assert isinstance(contacts, models.ContactPage)
    assert [c.id for c in contacts.items] == [contact.id]
    notes = _module("api.notes.list_contact_notes").sync(contact_id=contact.id, client=signed_in)
    assert isinstance(notes, models.NotePage)
    assert [(n.id, n.body) for n in notes.items] == [(note.id, "Met at the conference.")]

    _patch_a_field(signed_in, models, contact.id, sent)
    _missing_contact_is_a_typed_problem(signed_in, models)


def _patch_a_field(signed_in: Any, models: ModuleType, contact_id: str, sent: list[httpx.Request]) -> None:
    """updateContact sends a merge patch: the field set changes, the one set to None is removed."""
    patched = _module("api.contacts.update_contact").sync(
        contact_id=contact_id,
        client=signed_in,
        body=models.ContactPatch(title="CTO", email=None),
        if_match=f'"{contact_id}-1"',
    )
    assert sent[-1].method == "PATCH"
    assert sent[-1].headers["content-type"] == "application/merge-patch+json"
    assert json.loads(sent[-1].content) == {"title": "CTO", "email": None}
    assert isinstance(patched, models.ContactOut)
    assert (patched.title, patched.email, patched.company, patched.version) == ("CTO", None, "Example Corp", 2)


def _missing_contact_is_a_typed_problem(signed_in: Any, models: ModuleType) -> None:
    missing = _module("api.contacts.get_contact").sync(contact_id=UNKNOWN_ID, client=signed_in)
    assert isinstance(missing, models.Problem)
    assert missing.status == 404
    assert missing.type_.startswith("urn:contact-notes:problem:")
    assert missing.instance == f"/api/v1/contacts/{UNKNOWN_ID}"
    assert missing.request_id
