"""Issue #15's end to end: the CLI through its real entry point against `make run`'s stack imports
a 10,000-row file, exports it back, and every contact comes back as it went in."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from tests.cli import Cli, register
from tests.stack import running_stack

ROWS = 10_000
FIELDS = ("first_name", "last_name", "email", "phone", "company", "title")
FIRST = ("Ana", "José", "Zoë", "Björn", "Łukasz", "Mei", "Søren", "Amélie", "Oluwaseun", "Chloé", "Dmitri", "Aoife")
LAST = ("García", "Müller", "Nguyễn", "O'Brien", "Smith", "Kowalski", "Dubois", "Ivanov", "Tanaka", "Okafor")


def people() -> list[dict[str, str]]:
    """Unique emails; non-ASCII names; commas, quotes and (in the notes) line breaks to quote."""
    rows = []
    for n in range(ROWS):
        rows.append(
            {
                "first_name": FIRST[n % len(FIRST)],
                "last_name": f"{LAST[n % len(LAST)]} {n}",
                "email": f"person{n:05d}@example.com",
                "phone": f"+1 212-555-{n % 10_000:04d}" if n % 3 == 0 else "",
                "company": 'Acme, "the" Company' if n % 7 == 0 else ("Globex" if n % 2 else ""),
                "title": "Engineer; Lead" if n % 5 == 0 else "",
                "notes": "Met at the fair.\nCall back in May, about the order." if n % 20 == 0 else "",
            }
        )
    return rows


def test_import_ten_thousand_rows_and_export_them_back(tmp_path: Path) -> None:
    with running_stack(RATE_LIMIT_BURST="100000", RATE_LIMIT_PER_SECOND="100000") as stack:
        cli = Cli(stack.base + "/api/v1", tmp_path)
        register(cli.api, "bulk")
        assert cli.login("bulk").returncode == 0

        rows = people()
        source = tmp_path / "people.csv"
        with source.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, [*FIELDS, "notes"])
            writer.writeheader()
            writer.writerows(rows)

        started = time.monotonic()
        imported = cli.run("import", "people.csv", timeout=150)
        assert imported.returncode == 0, (imported.stdout, imported.stderr)
        assert "created 10,000, updated 0, skipped 0, failed 0, notes created 500" in imported.stdout

        exported = cli.run("export", "--format", "csv", "-o", "out.csv", timeout=120)
        assert exported.returncode == 0, exported.stderr
        assert time.monotonic() - started < 120  # the whole round trip, within its budget

        text = (tmp_path / "out.csv").read_bytes().decode("utf-8")  # as written: CRLF line ends
        assert text.startswith("id,first_name,last_name,email,phone,company,title,created_at,updated_at\r\n")
        back = list(csv.DictReader(io.StringIO(text, newline="")))
        assert len(back) == ROWS  # every page's rows, the header once
        sent = {row["email"]: {name: row[name] for name in FIELDS} for row in rows}
        got = {row["email"]: {name: row[name] for name in FIELDS} for row in back}
        assert got.keys() == sent.keys()
        assert [email for email in sent if got[email] != sent[email]] == []
