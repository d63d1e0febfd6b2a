"""The `contact-notes` CLI through its console script against `make run`'s stack: signing in and
the file it keeps, one-line failures, refreshing, Retry-After, export pages, search, import."""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cli import Cli, one_error_line, register
from tests.stack import Stack, free_port, poll, running_stack

# Small export pages, so that a handful of contacts takes several and the CLI must follow them.
PAGE_SIZE = 2


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(
        EXPORT_PAGE_SIZE=str(PAGE_SIZE), RATE_LIMIT_BURST="100000", RATE_LIMIT_PER_SECOND="100000"
    ) as up:
        yield up


def _cli(stack: Stack, tmp_path: Path, username: str) -> Cli:
    cli = Cli(stack.base + "/api/v1", tmp_path / "config")
    cli.home.mkdir()
    register(cli.api, username)
    done = cli.login(username)
    assert done.returncode == 0, done.stderr
    return cli


def _contacts(cli: Cli, *bodies: dict[str, str]) -> list[dict[str, str]]:
    made = [requests.post(cli.api + "/contacts", json=body, headers=cli.headers(), timeout=10) for body in bodies]
    assert [reply.status_code for reply in made] == [201] * len(bodies)
    return [reply.json() for reply in made]


def test_login_keeps_the_tokens_readable_by_the_user_only(stack: Stack, tmp_path: Path) -> None:
    cli = _cli(stack, tmp_path, "cli-login")
    folder = cli.credentials_file.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(cli.credentials_file.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["credentials.json"]  # no staging file left behind
    stored = cli.stored()
    assert stored["api"] == cli.api and stored["access_token"] and stored["refresh_token"]
    assert stored["expires_at"].endswith("Z")
    assert requests.get(cli.api + "/auth/me", headers=cli.headers(), timeout=10).json()["username"] == "cli-login"

    signed_out = cli.run("logout")
    assert signed_out.returncode == 0, signed_out.stderr
    assert not cli.credentials_file.exists()
    # The sign-in was revoked on the server too: its refresh token is refused.
    form = {"grant_type": "refresh_token", "refresh_token": stored["refresh_token"]}
    assert requests.post(cli.api + "/auth/token", data=form, timeout=10).status_code == 401
    assert one_error_line(cli.run("search", "anyone")) == "error: not signed in: run contact-notes login"


def test_a_wrong_password_is_one_line_and_exit_1(stack: Stack, tmp_path: Path) -> None:
    cli = Cli(stack.base + "/api/v1", tmp_path)
    register(cli.api, "cli-wrong")
    line = one_error_line(cli.login("cli-wrong", "not the password"))
    assert line == "error: 401 Unauthorized: Incorrect username or password."
    assert not cli.credentials_file.exists()


def test_an_unreachable_api_is_one_line_and_exit_1(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{free_port()}/api/v1"
    cli = Cli(api, tmp_path)
    assert one_error_line(cli.login("nobody")) == f"error: cannot reach {api}: connection refused"
    output = tmp_path / "out.csv"
    cli.credentials_file.parent.mkdir()
    cli.credentials_file.write_text(
        json.dumps({"api": api, "access_token": "a", "refresh_token": "r", "expires_at": "2999-01-01T00:00:00Z"})
    )
    done = cli.run("export", "--format", "csv", "-o", str(output))
    assert one_error_line(done) == f"error: cannot reach {api}: connection refused"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contact-notes"]  # no half file, no temporary one


def test_usage_errors_are_one_line_too(tmp_path: Path) -> None:
    cli = Cli("http://127.0.0.1:9/api/v1", tmp_path)
    assert "'xml' is not one of" in one_error_line(cli.run("export", "--format", "xml"))
    (tmp_path / "people.txt").write_text("a,b\n")
    assert one_error_line(cli.run("import", "people.txt")) == (
        "error: cannot tell the format of people.txt: give --format csv, vcard or json"
    )
    (tmp_path / "people.csv").write_text("email\nann@example.com\n")
    assert one_error_line(cli.run("import", "people.csv", "--mapping", "[1]")).startswith(
        "error: --mapping must be a JSON object"
    )


def test_an_expired_or_refused_access_token_is_refreshed_once_and_the_new_pair_kept(
    stack: Stack, tmp_path: Path
) -> None:
    cli = _cli(stack, tmp_path, "cli-refresh")
    first = cli.stored()

    cli.store(expires_at="2020-01-01T00:00:00Z")  # run out: refreshed before the request
    done = cli.run("search", "anyone")
    assert done.returncode == 0, done.stderr
    second = cli.stored()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert second["expires_at"] > "2020"
    assert stat.S_IMODE(cli.credentials_file.stat().st_mode) == 0o600

    cli.store(access_token="not.a.token")  # within its time, yet refused: 401, refreshed, sent again
    done = cli.run("search", "anyone")
    assert done.returncode == 0, done.stderr
    assert cli.stored()["refresh_token"] != second["refresh_token"]

    cli.store(access_token="not.a.token", refresh_token="not-a-refresh-token")
    assert one_error_line(cli.run("search", "anyone")) == "error: not signed in: run contact-notes login"


def test_export_follows_every_page_in_each_format(stack: Stack, tmp_path: Path) -> None:
    cli = _cli(stack, tmp_path, "cli-export")
    made = _contacts(
        cli,
        {"first_name": "Zoë", "last_name": "Ångström", "email": "zoe@example.com", "company": "Acme, Inc."},
        {"first_name": "Quote", "last_name": "Marks", "title": 'He said "hi"; then, left'},
        *({"first_name": f"Person {n}", "email": f"p{n}@example.com"} for n in range(3)),
    )  # three pages of two

    done = cli.run("export", "--format", "csv", "-o", "out.csv")
    assert done.returncode == 0, done.stderr
    text = (cli.home / "out.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert text.count("id,first_name,last_name,email") == 1  # the header once, not once a page
    assert {row["id"]: row for row in rows}.keys() == {c["id"] for c in made}
    for contact in made:
        row = next(r for r in rows if r["id"] == contact["id"])
        assert {k: row[k] for k in ("first_name", "last_name", "company", "title")} == {
            k: contact[k] or "" for k in ("first_name", "last_name", "company", "title")
        }

    done = cli.run("export", "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["format"] == "contact-notes" and document["version"] == 1 and document["next_cursor"] is None
    assert sorted(c["id"] for c in document["contacts"]) == sorted(c["id"] for c in made)

    done = cli.run("export", "--format", "vcard", "-o", "out.vcf")
    assert done.returncode == 0, done.stderr
    import vobject

    cards = list(vobject.readComponents((cli.home / "out.vcf").read_text(encoding="utf-8")))
    assert sorted(card.uid.value for card in cards) == sorted(c["id"] for c in made)
    assert sorted(p.name for p in cli.home.iterdir()) == ["contact-notes", "out.csv", "out.vcf"]


def test_search_prints_the_hits(stack: Stack, tmp_path: Path) -> None:
    cli = _cli(stack, tmp_path, "cli-search")
    (contact,) = _contacts(cli, {"first_name": "Quentin", "last_name": "Zanzibar", "email": "qz@example.com"})

    def found() -> str | None:  # the index follows the contacts' stream within seconds
        done = cli.run("search", "zanzib")
        assert done.returncode == 0, done.stderr
        return done.stdout if contact["id"] in done.stdout else None

    shown = poll(found, 20)
    assert "Quentin Zanzibar" in shown and "<qz@example.com>" in shown
    none = cli.run("search", "zanzib", "--type", "note")
    assert none.returncode == 0 and none.stdout.strip() == "no matches"


def test_import_sends_parts_and_numbers_rows_as_in_the_file(stack: Stack, tmp_path: Path) -> None:
    cli = _cli(stack, tmp_path, "cli-import")
    lines = ["first_name,last_name,email,notes"]
    for n in range(7):
        email = "not-an-email" if n == 4 else f"row{n}@example.com"
        notes = '"Met at the fair.\nCall back in May."' if n in (1, 2) else ""  # one record, one row
        lines.append(f"Ïmport {n},Row,{email},{notes}")
    (cli.home / "people.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))

    dry = cli.run("import", "people.csv", "--batch-rows", "2", "--dry-run")
    assert dry.returncode == 2, dry.stderr
    assert requests.get(cli.api + "/contacts", headers=cli.headers(), timeout=10).json()["items"] == []

    done = cli.run("import", "people.csv", "--batch-rows", "2")
    assert done.returncode == 2, (done.stdout, done.stderr)  # some rows failed, the rest are in
    assert "created 6, updated 0, skipped 0, failed 1" in done.stdout
    # The bad email is the file's 6th row (header = row 1), whichever request carried it.
    failed = [[cell.strip() for cell in line.split("│")[1:-1]] for line in done.stdout.splitlines() if "│" in line]
    assert [cells[:2] for cells in failed] == [["6", "email"]], done.stdout
    listed = requests.get(cli.api + "/contacts", headers=cli.headers(), timeout=10).json()["items"]
    assert sorted(c["first_name"] for c in listed) == [f"Ïmport {n}" for n in range(7) if n != 4]
    assert {c["last_name"] for c in listed} == {"Row"}


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    # One request back every 4 s: the CLI starts well within that, so it meets the 429.
    with running_stack(RATE_LIMIT_BURST="3", RATE_LIMIT_PER_SECOND="0.25") as limited:
        cli = Cli(limited.base + "/api/v1", tmp_path)
        register(cli.api, "cli-patient")  # the anonymous bucket: sign-up and sign-in
        assert cli.login("cli-patient").returncode == 0
        for _ in range(3):  # the user's own bucket, emptied
            assert requests.get(cli.api + "/auth/me", headers=cli.headers(), timeout=10).status_code == 200
        started = time.monotonic()
        done = cli.run("search", "anyone")
        assert done.returncode == 0, done.stderr
        waited = re.search(r"the API is busy: trying again in (\d+\.\d) s", done.stderr)
        assert waited, done.stderr
        assert time.monotonic() - started >= float(waited.group(1)) >= 1.0  # Retry-After, not a guess
