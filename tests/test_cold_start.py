"""What app.py does for cold starts must not change how the process runs afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

from chalicelib.models import ALL_MODELS
from tests.conftest import ROOT, Api


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STAGE": "local"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_garbage_collection_runs_again_once_the_handler_is_imported() -> None:
    assert _python("import gc, app; print(gc.isenabled(), gc.get_freeze_count() > 1000)") == "True True"


def test_a_collector_switched_off_before_stays_off() -> None:
    assert _python("import gc; gc.disable(); import app; print(gc.isenabled())") == "False"


def test_schemas_are_built_on_first_use_or_all_at_once_before_serving_on_threads() -> None:
    code = (
        "from chalicelib import schemas as s\n"
        "models = [s.ContactIn, s.ContactOut, s.NoteCreate, s.RegisterIn, s.Problem]\n"
        "print([m.__pydantic_complete__ for m in models])\n"
        "s.build_all()\n"
        "print([m.__pydantic_complete__ for m in models])\n"
    )
    assert _python(code).splitlines() == ["[False, False, False, False, False]", "[True, True, True, True, True]"]


def test_every_model_shares_one_dynamodb_client(alice: Api) -> None:
    """A client costs a cold start 80-100 ms: a request touching three tables must make one."""
    assert alice.get("/contacts").status == 200
    clients = {id(model._get_connection().connection.client) for model in ALL_MODELS}
    assert len(clients) == 1
