"""`contact-notes`: sign in, import a file, export the workspace, search, from a terminal.

Exit codes: 0 done; 1 any failure, said in one line on stderr ("error: ..."); 2 an import in
which some rows failed (the rest were imported; the failures are listed).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from contactnotes_client import parts
from contactnotes_client.session import DEFAULT_API, IMPORT_READ_SECONDS, CliError, Session

EXIT_ROWS_FAILED = 2
REPORT_COUNTS = ("created", "updated", "skipped", "failed", "notes_created")

app = typer.Typer(
    name="contact-notes",
    help="The Contact Notes API from the command line.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class FileFormat(StrEnum):
    csv = "csv"
    vcard = "vcard"
    json = "json"


class Conflict(StrEnum):
    skip = "skip"
    update = "update"


class HitType(StrEnum):
    contact = "contact"
    note = "note"


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


class RateColumn(ProgressColumn):
    """'1,234 rows/s' (rich's own speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s", style="progress.data.speed")


def _progress(unit: str) -> Progress:
    """A bar on stderr, only when it is a terminal: piped output and logs stay clean."""
    console = _err()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        RateColumn(unit),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def _session(ctx: typer.Context) -> Session:
    session: Session = ctx.obj
    return session


@app.callback()
def main_options(
    ctx: typer.Context,
    api: Annotated[
        str, typer.Option("--api", envvar="CONTACT_NOTES_API", help="The API's base URL.", show_default=True)
    ] = DEFAULT_API,
) -> None:
    ctx.obj = Session(api, notice=_err().print)


@app.command()
def login(
    ctx: typer.Context,
    username: Annotated[str | None, typer.Option(help="Asked for when not given.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    workspace: Annotated[str | None, typer.Option(help="Act in this workspace (its id).")] = None,
) -> None:
    """Sign in; the tokens are kept in your config folder, readable by you only."""
    if username is None:
        username = typer.prompt("Username")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else typer.prompt("Password", hide_input=True)
    session = _session(ctx)
    session.sign_in(username, password, workspace)
    _err().print(f"signed in to {session.api} as {username}")


@app.command()
def logout(ctx: typer.Context) -> None:
    """Sign out: the sign-in is revoked on the server and forgotten here."""
    signed_out = _session(ctx).sign_out()
    _err().print("signed out" if signed_out else "not signed in")


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV, vCard or JSON.")],
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Taken from the extension when not given.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row; store nothing.")] = False,
    on_conflict: Annotated[
        Conflict | None, typer.Option(help="A contact whose email exists already: skip it or update it.")
    ] = None,
    mapping: Annotated[
        str | None, typer.Option(help='Fields to CSV columns, a JSON object: {"email": "E-Mail"}.')
    ] = None,
    batch_rows: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per request.")] = parts.DEFAULT_ROWS,
) -> None:
    """Import contacts from a file, in requests of at most --batch-rows rows."""
    fmt = file_format.value if file_format else parts.format_of(file)
    if fmt is None:
        raise CliError(f"cannot tell the format of {file.name}: give --format csv, vcard or json")
    params = {"format": fmt, "dry_run": "true" if dry_run else "false"}
    if on_conflict:
        params["on_conflict"] = on_conflict.value
    if mapping is not None:
        params["mapping"] = _mapping(mapping)
    try:
        pieces = parts.split(file.read_bytes(), fmt, batch_rows)
    except parts.SplitError as error:
        raise CliError(f"{file.name}: {error}") from None
    totals = _send_parts(_session(ctx), pieces, fmt, params)
    _print_report(totals, dry_run)
    if totals["failed"]:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _mapping(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CliError('--mapping must be a JSON object of fields to columns, such as {"email": "E-Mail"}')
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _send_parts(session: Session, pieces: list[parts.Part], fmt: str, params: dict[str, str]) -> dict[str, Any]:
    totals: dict[str, Any] = dict.fromkeys(REPORT_COUNTS, 0) | {"errors": []}
    # CSV rows are numbered as a spreadsheet shows them (the header is row 1) by the server
    # too, per request: the same shift applies to every format.
    with _progress("rows") as progress:
        task = progress.add_task("importing", total=sum(piece.rows for piece in pieces))
        for piece in pieces:
            try:
                report = session.send(
                    "POST",
                    "imports",
                    authorized=True,
                    read_seconds=IMPORT_READ_SECONDS,
                    params=params,
                    data=piece.body,
                    headers={"Content-Type": parts.MEDIA_TYPES[fmt]},
                ).json()
            except CliError as error:
                raise CliError(_where(piece, fmt) + str(error)) from None
            for name in REPORT_COUNTS:
                totals[name] += int(report.get(name) or 0)
            for problem in report.get("errors") or []:
                totals["errors"].append({**problem, "row": _shifted(problem.get("row"), piece.offset)})
            progress.advance(task, piece.rows)
    return totals


def _where(piece: parts.Part, fmt: str) -> str:
    """Which rows a failed request held, when the file took several."""
    if piece.offset == 0:
        return ""
    first = piece.offset + (2 if fmt == "csv" else 1)
    return f"rows from {first} on (those before were sent): "


def _shifted(row: object, offset: int) -> object:
    return row + offset if isinstance(row, int) and not isinstance(row, bool) else row


def _print_report(totals: dict[str, Any], dry_run: bool) -> None:
    out = _out()
    counts = ", ".join(f"{name.replace('_', ' ')} {totals[name]:,}" for name in REPORT_COUNTS)
    out.print(("dry run (nothing stored): " if dry_run else "") + counts)
    if totals["errors"]:
        table = Table("row", "field", "detail", title="rows that failed", title_justify="left")
        for problem in totals["errors"]:
            table.add_row(str(problem.get("row", "")), str(problem.get("field") or ""), str(problem.get("detail", "")))
        out.print(table)


@app.command("export")
def export_contacts(
    ctx: typer.Context,
    file_format: Annotated[FileFormat, typer.Option("--format", help="What to write.")] = FileFormat.json,
    output: Annotated[Path | None, typer.Option("-o", "--output", dir_okay=False, help="Default: stdout.")] = None,
) -> None:
    """Export every contact of the workspace, following the pages."""
    session = _session(ctx)
    fmt = file_format.value
    with _destination(output) as sink, _progress("contacts") as progress:
        task = progress.add_task("exporting", total=None)
        writer = _WRITERS[fmt](sink)
        for page in session.pages("exports", {"format": fmt}):
            progress.advance(task, writer.page(page.content))
        writer.close()
    if output is not None:
        _err().print(f"exported {writer.count:,} contacts to {output}")


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or a temporary file beside `output` renamed onto it once complete: a failed
    export leaves no half file (and an existing file as it was)."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    folder = output.resolve().parent
    handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{output.name}.", suffix=".part", delete=False)  # noqa: SIM115
    try:
        with handle:
            os.fchmod(handle.fileno(), _file_mode(output))  # as `>` would make it, not 0600
            yield handle
        os.replace(handle.name, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


def _file_mode(output: Path) -> int:
    """The existing file's mode, or a new file's under the umask."""
    try:
        return output.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class _CsvWriter:
    """The header once, then every page's records."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.count, self.header_written = sink, 0, False

    def page(self, body: bytes) -> int:
        try:
            header, records = parts.csv_records(parts.decode(body))
        except parts.SplitError as error:
            raise CliError(f"the export answered a page that is not CSV: {error}") from None
        if not self.header_written:
            self.sink.write(header.encode("utf-8"))
            self.header_written = True
        self.sink.write("".join(records).encode("utf-8"))
        self.count += len(records)
        return len(records)

    def close(self) -> None:
        pass


class _VcardWriter:
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.count = sink, 0

    def page(self, body: bytes) -> int:
        self.sink.write(body)
        cards = sum(1 for line in body.splitlines() if line.strip().upper() == b"BEGIN:VCARD")
        self.count += cards
        return cards

    def close(self) -> None:
        pass


class _JsonWriter:
    """One document of every page's contacts, written as they come."""

    OPENING = b'{"format": "contact-notes", "version": 1, "contacts": ['

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.count, self.opened = sink, 0, False

    def page(self, body: bytes) -> int:
        try:
            contacts = json.loads(body)["contacts"]
        except (ValueError, KeyError, TypeError) as error:
            raise CliError(f"the export answered a page that is not a contact-notes document: {error}") from None
        self._open()  # only once a page came: a failed first request prints nothing on stdout
        for contact in contacts:
            self.sink.write((b",\n" if self.count else b"\n") + json.dumps(contact, ensure_ascii=False).encode("utf-8"))
            self.count += 1
        return len(contacts)

    def _open(self) -> None:
        if not self.opened:
            self.sink.write(self.OPENING)
            self.opened = True

    def close(self) -> None:
        self._open()
        self.sink.write(b'\n], "next_cursor": null}\n')


_WRITERS: dict[str, Any] = {"csv": _CsvWriter, "vcard": _VcardWriter, "json": _JsonWriter}


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to find (all of them), #tag, digits of a phone, an email.")],
    hit_type: Annotated[HitType | None, typer.Option("--type", help="Only contacts, or only notes.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """Search contacts and notes; the best matches first."""
    params = {"q": query, "limit": str(limit)} | ({"type": hit_type.value} if hit_type else {})
    hits = _session(ctx).send("GET", "search", authorized=True, params=params).json()["items"]
    out = _out()
    if not hits:
        out.print("no matches")
        return
    table = Table("type", "what", "matched")
    table.add_column("id", no_wrap=True, min_width=26)  # a ULID: never cut
    for hit in hits:
        table.add_row(hit["type"], _summary(hit), ", ".join(hit.get("matched") or []), hit["id"])
    out.print(table)


def _summary(hit: dict[str, Any]) -> str:
    if hit["type"] == "contact":
        contact = hit["contact"]
        name = " ".join(filter(None, (contact.get("first_name"), contact.get("last_name"))))
        return " ".join(filter(None, (name, f"<{contact['email']}>" if contact.get("email") else None)))
    body = str(hit["note"].get("body") or hit["note"].get("original_body") or "")
    return body if len(body) <= 80 else body[:79] + "…"


def main(argv: list[str] | None = None) -> int:
    """The console script: every failure one line on stderr, never a traceback."""
    try:
        code = app(args=argv, prog_name="contact-notes", standalone_mode=False)
    except CliError as error:
        return _fail(str(error))
    except typer.Abort:
        return _fail("aborted")
    except typer.TyperException as error:  # a usage error: which option, what is wrong with it
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        return _fail(" ".join(message.split())) if message.strip() else 2  # blank: the help was shown
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except OSError as error:
        return _fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
    except Exception as error:  # a bug of ours: still one line, as promised
        return _fail(f"unexpected {type(error).__name__}: {' '.join(str(error).split())}")
    return code if isinstance(code, int) else 0


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
