"""POST /imports with real products' files: Google Contacts (current and legacy CSV), Outlook, a
Windows-1252 Excel sheet, our own export, a sheet needing a mapping, macOS/iPhone vCard 3.0 and
vCard 4.0; the report and what is stored. Fixtures: tests/data/imports (made-up people on the
products' exact header sets and encodings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api, CallCounter, problem
from tests.test_imports import contacts, notes_of

DATA = Path(__file__).parent / "data" / "imports"
FIELDS = ("first_name", "last_name", "email", "phone", "company", "title")
NO_NAME = "No name: the record has no given, family or display name and no organization to name it by."


def upload(api: Api, name: str, content_type: str, query: str = "") -> Any:
    return api.request(
        "POST", f"/imports{query}", raw=(DATA / name).read_bytes(), headers={"content-type": content_type}
    )


def stored(api: Api) -> dict[str, dict[str, Any]]:
    """Each stored contact's fields and notes, by first name."""
    return {c["first_name"]: {**{k: c[k] for k in FIELDS}, "notes": notes_of(api, c["id"])} for c in contacts(api)}


def contact(first: str, last: str | None = None, email: str | None = None, **rest: Any) -> dict[str, Any]:
    return {
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": rest.get("phone"),
        "company": rest.get("company"),
        "title": rest.get("title"),
        "notes": rest.get("notes", []),
    }


def report(created: int, skipped: int, failed: int, notes: int) -> dict[str, Any]:
    """The report's counts (errors aside)."""
    return {
        "created": created,
        "updated": 0,
        "skipped": skipped,
        "failed": failed,
        "notes_created": notes,
        "dry_run": False,
    }


def check(reply: Any, expected: dict[str, Any], errors: list[tuple[int, str | None]]) -> list[dict[str, Any]]:
    """The report's counts and its errors' rows and fields; returns the errors."""
    assert reply.status == 200, reply.body
    body = reply.json
    assert {k: v for k, v in body.items() if k != "errors"} == expected
    assert [(e["row"], e.get("field")) for e in body["errors"]] == errors
    return body["errors"]  # type: ignore[no-any-return]


def test_google_contacts_current_csv(alice: Api) -> None:
    reply = upload(alice, "google.csv", "text/csv")
    # Row 4 is all empty cells (skipped silently); José's quoted newlines do not shift the rows.
    errors = check(reply, report(4, 1, 2, 1), [(7, "email"), (9, "first_name")])
    assert errors[1]["detail"] == NO_NAME
    assert stored(alice) == {
        # "* Home" marks the preferred email, "* Mobile" the phone; the department is left out
        "José": contact(
            "José",
            "García",
            "Jose.Garcia@home.example",
            phone="+34 612 345 678",
            company="Acme Iberia",
            title="Ingeniero jefe",
            notes=["Met at the Madrid meetup.\nLikes paella, and jazz."],
        ),
        # two values in one cell (" ::: "): the first
        "Zoë": contact("Zoë", "Ångström", "zoe@angstrom.example", phone="+46 70 123 45 67"),
        # an organization without a person's name is named by the organization
        "Northwind Traders": contact("Northwind Traders", None, "info@northwind.example", company="Northwind Traders"),
        # only a family name: it is the first name
        "Nakamura": contact("Nakamura", phone="+81 90 1234 5678"),
    }  # Pepe's JOSE.GARCIA@HOME.EXAMPLE is José's email: skipped


def test_legacy_google_csv_in_utf16_with_a_bom(alice: Api) -> None:
    reply = upload(alice, "google_legacy_utf16.csv", "text/csv")
    errors = check(reply, report(2, 0, 1, 1), [(4, "first_name")])
    assert errors[0]["detail"] == NO_NAME
    assert stored(alice) == {
        "太郎": contact(
            "太郎",
            "山田",
            "taro@yamada-shoji.example.jp",  # "* Work" is preferred over the first, "Other"
            phone="090-1234-5678",
            company="山田商事",
            title="部長",
            notes=["日本語のメモ"],
        ),
        # only the Name column: split into given and family name
        "Łukasz": contact("Łukasz", "Nowak", "lukasz@nowak.example.pl", phone="+48 22 123 45 67"),
    }


def test_outlook_csv_in_utf8_with_a_bom(alice: Api) -> None:
    reply = upload(alice, "outlook_utf8_bom.csv", "text/csv")
    errors = check(reply, report(3, 0, 1, 1), [(4, "email")])
    assert "ann.lee@" not in json.dumps(alice.get("/contacts").json)
    assert errors[0]["row"] == 4  # Zoë's two-line note is still row 2
    assert stored(alice) == {
        # Outlook's "Title" is the honorific (Dr., Mr.): the job title is "Job Title"
        "Zoë": contact(
            "Zoë",
            "Müller",
            "zoe.mueller@mueller-soehne.example",
            phone="+49 151 23456789",  # no Primary Phone: the mobile before the business phone
            company="Müller & Söhne GmbH",
            title="Head of Purchasing",
            notes=['Prefers email.\nSays "hi", often; met at CeBIT.'],
        ),
        # no first e-mail address: the second; the Primary Phone first
        "John": contact(
            "John", "Smith", "john.smith@contoso.example", phone="(425) 555-0199", company="Contoso Ltd.", title="CFO"
        ),
        "Łukasz": contact("Łukasz", "Wiśniewski", "Lukasz.W@example.pl", phone="+48 12 345 67 89"),
    }


def test_a_windows_1252_sheet_with_semicolons_is_matched_by_common_column_names(alice: Api) -> None:
    body = (DATA / "excel_windows1252.csv").read_bytes()
    assert b"\xe9" in body and b"\x80" in body  # é and € as Windows-1252 writes them
    reply = upload(alice, "excel_windows1252.csv", "text/csv")
    check(reply, report(2, 0, 0, 1), [])
    assert stored(alice) == {
        "Renée": contact(
            "Renée",
            "Dupont",
            "renee.dupont@exemple.fr",
            phone="06 12 34 56 78",
            company="Café de Flore",
            title="Gérante",
            notes=["Budget: 5 000 € par an"],
        ),
        "François": contact("François", "L'Écuyer", "francois@ecuyer.example", company="Société Générale d'Exemple"),
    }


def test_our_own_export_with_bad_rows_among_good_ones(alice: Api) -> None:
    reply = upload(alice, "ours.csv", "text/csv")
    errors = check(reply, report(2, 1, 2, 0), [(3, "first_name"), (4, "email")])
    assert errors[0]["detail"] == NO_NAME
    assert stored(alice) == {
        "Ada": contact(
            "Ada",
            "Lovelace",
            "ada@analytical.example",
            phone="+44 20 7946 0000",
            company="Analytical Engines",
            title="Programmer",
        ),
        "Alan": contact("Alan", "Turing", "alan@bletchley.example"),
    }  # row 6's ADA@Analytical.example is Ada's email, differing in case: skipped


def test_columns_no_product_writes_need_a_mapping(alice: Api) -> None:
    detail = problem(upload(alice, "mapped.csv", "text/csv"), 400)["detail"]
    assert "'Vorname', 'Nachname', 'E-Mail-Adresse', 'Telefon', 'Firma', 'Notiz'" in detail
    assert "mapping" in detail

    mapping = {"first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail-Adresse", "phone": "Telefon"}
    mapping |= {"company": "Firma", "notes": "Notiz"}
    reply = upload(alice, "mapped.csv", "text/csv", f"?mapping={quote(json.dumps(mapping))}")
    check(reply, report(1, 0, 0, 1), [])
    assert stored(alice) == {
        "Jürgen": contact(
            "Jürgen",
            "Groß",
            "juergen@gross.example",
            phone="+49 89 123456",
            company="Groß KG",
            notes=["Rückruf erbeten"],
        )
    }


def test_a_mapping_naming_a_column_the_file_lacks_is_a_400_naming_it(alice: Api) -> None:
    query = "?mapping=" + quote(json.dumps({"first_name": "Vorname", "email": "Mail"}))
    detail = problem(upload(alice, "mapped.csv", "text/csv", query), 400)["detail"]
    assert "'Mail'" in detail and "email" in detail
    assert contacts(alice) == []


def test_macos_and_iphone_vcards(alice: Api) -> None:
    reply = upload(alice, "apple.vcf", "text/vcard")
    errors = check(reply, report(4, 1, 2, 2), [(5, "email"), (7, "first_name")])
    assert errors[1]["detail"] == NO_NAME
    assert stored(alice) == {
        # type=pref wins for email and phone; ORG's department left out; the photo ignored;
        # the folded NOTE unfolded and unescaped, Apple's "\:" included
        "Johnny": contact(
            "Johnny",
            "Appleseed",
            "johnny@work.example",
            phone="+1 (408) 555-0102",
            company="Apple Example Inc.",
            title="Senior Engineer",
            notes=[
                "Call after 5pm: never before.\nLikes apples, pears; and plums. This note is long enough "
                "to be folded over more than one line by the exporter."
            ],
        ),
        # X-ABShowAs:COMPANY: the organization's name whole as the first name
        "Blue Bottle Roasters": contact(
            "Blue Bottle Roasters", None, "hello@bluebottle.example", company="Blue Bottle Roasters"
        ),
        # FN without N, and FN with an empty N: split
        "Łukasz": contact("Łukasz", "Kowalski", "lukasz.kowalski@example.pl"),
        "Zoë": contact("Zoë", "Lindqvist", "zoe@lindqvist.example", notes=["First line\nsecond line"]),
    }  # card 6's JOHNNY@Work.Example is Johnny's email: skipped


def test_vcard_4(alice: Api) -> None:
    reply = upload(alice, "v4.vcf", "text/x-vcard")
    errors = check(reply, report(3, 0, 1, 1), [(3, None)])
    assert errors[0]["detail"].startswith("Card 3 cannot be read")
    assert stored(alice) == {
        # KIND:org keeps the organization's name whole
        "山田商事株式会社": contact(
            "山田商事株式会社",
            None,
            "info@yamada-shoji.example.jp",
            phone="+81-3-1234-5678",
            company="山田商事株式会社",
        ),
        # PREF=1 beats PREF=2 and no PREF; a tel: URI is its number
        "Aiko": contact(
            "Aiko",
            "Nakamura",
            "aiko@work.example",
            phone="+81-90-1234-5678",
            company="Example Research Institute",
            title="Research Director",
            notes=["Met at the conference, Kyoto; tea lover"],
        ),
        "Kim": contact("Kim", None, "kim@example.kr"),
    }


def test_text_directory_is_a_vcard_and_a_dry_run_writes_nothing(alice: Api) -> None:
    reply = upload(alice, "v4.vcf", "text/directory", "?dry_run=true")
    assert reply.status == 200, reply.body
    assert reply.json["created"] == 3 and reply.json["dry_run"] is True
    assert contacts(alice) == []


def test_any_other_header_set_is_matched_by_common_names(alice: Api) -> None:
    sheet = (
        "Name,Email Address,Job Title,Organisation,Cell,Comments\n"
        'Mary Ann Smith,mary@example.com,CTO,Initech,+1 212 555 0100,"Knows everyone,\nreally"\n'
        '"Lovelace, Ada",ada@example.org,,,,\n'
        "Cher,cher@example.net,Singer,,,\n"
        ",,,,,\n"
        "   ,   ,,,,\n"
        ",,,Initrode,,\n"
    )
    reply = alice.request("POST", "/imports", raw=sheet.encode(), headers={"content-type": "text/csv"})
    check(reply, report(4, 0, 0, 1), [])
    assert stored(alice) == {
        # "Title" is a job title here (only Outlook's is an honorific); a display name is split
        "Mary Ann": contact(
            "Mary Ann",
            "Smith",
            "mary@example.com",
            phone="+1 212 555 0100",
            company="Initech",
            title="CTO",
            notes=["Knows everyone,\nreally"],
        ),
        "Ada": contact("Ada", "Lovelace", "ada@example.org"),
        "Cher": contact("Cher", None, "cher@example.net", title="Singer"),
        "Initrode": contact("Initrode", company="Initrode"),
    }


RANDOM = bytes((i * 73 + 41) % 256 for i in range(2048))


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ("Name,E-mail\nAnn,ann@example.com\n".encode("utf-16-le"), "text/csv", "UTF-16 without a byte-order mark"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "text/csv", "not text"),
        (RANDOM, "text/csv", "nor Windows-1252"),
        (b"Name,E-mail\nAnn\x00,ann@example.com\n", "text/csv", "NUL"),
        (b"First Name,Email\n\x81\x8d\x8f,x@example.com\n", "text/csv", "Windows-1252"),
        (b"\xff\xfeA", "text/csv", "UTF-16"),
        ("BEGIN:VCARD\nFN:Ann\nEND:VCARD\n".encode("utf-16-le"), "text/vcard", "NUL"),
        (b"", "text/csv", "no header"),
        (b"\nAnn,ann@example.com\n", "text/csv", "no header"),
        (b"Shoe size,Colour\n42,blue\n", "text/csv", "'Shoe size', 'Colour'"),
        ((DATA / "apple.vcf").read_bytes(), "text/csv", "format=vcard"),
        (b"Name,E-mail\nAnn,ann@example.com\n", "text/vcard", "No vCard"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_400(alice: Api, body: bytes, content_type: str, says: str) -> None:
    reply = alice.request("POST", "/imports", raw=body, headers={"content-type": content_type})
    detail = problem(reply, 400)["detail"]
    assert says in detail
    assert "\x00" not in detail
    assert contacts(alice) == []


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("google.csv", "text/csv"),
        ("google_legacy_utf16.csv", "text/csv"),
        ("outlook_utf8_bom.csv", "text/csv"),
        ("excel_windows1252.csv", "text/csv"),
        ("ours.csv", "text/csv"),
        ("apple.vcf", "text/vcard"),
        ("v4.vcf", "text/vcard"),
    ],
)
def test_a_dry_run_of_each_file_sends_no_write_and_answers_the_real_report(
    alice: Api, dynamodb: CallCounter, name: str, content_type: str
) -> None:
    dynamodb.reset()
    dry = upload(alice, name, content_type, "?dry_run=true")
    assert dry.status == 200, dry.body
    assert not {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"} & set(dynamodb.calls)
    assert contacts(alice) == []
    real = upload(alice, name, content_type)
    assert dry.json == real.json | {"dry_run": True}
    assert len(contacts(alice)) == real.json["created"] > 0
