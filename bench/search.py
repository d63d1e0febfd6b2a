"""Search (#14): latency at 1,000 and at 20,000 contacts and notes in one workspace, calls per
search, index writes per item created, and the index's size per item.

The workspace (alice's) holds contacts and notes in the proportion 1:2, made from pools of
names, surnames, companies and titles, each note 20-40 words of a 400-word vocabulary that
also names its contact, a tag on one note in five. So a query's matches grow with the
workspace as real ones do: a first name matches 1 contact in 50 and their notes; three terms
(first name, surname, company) 1 contact in 150. Items and their postings (the words
text.contact_words and note_words give, under keys.posting_key, as the indexer writes them)
are put straight into moto's in-process backend, as bench/scale.py does.

moto's Query walks every item of the table and sorts the partition on each call, so end to
end a search slows with the index whatever our code does; as in bench/scale.py each
request's time is split at the SDK boundary (`clocked()`), and the budget (1.3, the issue's)
applies to the rest, ours, divided by the machine's drift measured on /health. End to end is
printed beside. Index writes are counted on real stream records delivered to the indexer
Lambdas (tests.search.index_now), for items created through the API.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.report import Figure
from bench.scale import Clock, clocked

SIZES = (1_000, 20_000)
SAMPLES = 15
CONTROL = "health"
FIRST = ("Maria", "José", "Anna", "Łukasz", "Zoë", "Mohammed", "Wei", "Sofia", "Liam", "Noah", "Emma", "Olivia",
         "Ava", "Isabella", "Mia", "Lucas", "Mateo", "Hugo", "Léa", "Chloé", "Björn", "Ingrid", "Sven", "Astrid",
         "Kenji", "Yuki", "Priya", "Arjun", "Fatima", "Omar", "Ana", "Pedro", "Carlos", "Lucía", "Diego", "Elena",
         "Ivan", "Olga", "Dmitri", "Nina", "Tomás", "Inês", "Ruth", "Samuel", "Grace", "Henry", "Jack", "Ella",
         "Oscar", "Freya")  # fmt: skip
LAST = ("Garcia", "Müller", "Smith", "Kowalski", "Nguyen", "Rossi", "Dubois", "Novak", "Silva", "Kim", "Sato",
        "Patel", "Khan", "Cohen", "Ivanova", "Larsen", "Jensen", "Öztürk", "Fernández", "López", "Martin",
        "Bernard", "Moreau", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann",
        "Johansson", "Andersson", "Nilsson", "Eriksson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas",
        "Walsh", "Byrne", "Ryan", "O'Brien", "Murphy", "Kelly", "Costa", "Santos", "Pereira",
        "Łukasiewicz")  # fmt: skip
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Tyrell",
             "Cyberdyne", "Soylent", "Massive", "Aperture", "Black Mesa", "Gringotts", "Oscorp", "Pied Piper",
             "Dunder Mifflin", "Sterling Cooper", "Monarch", "Virtucon", "Nakatomi", "Weyland", "Gekko",
             "Bluth", "Prestige", "Buy n Large", "Duff", "Krusty")  # fmt: skip
TITLES = ("CEO", "CTO", "CFO", "COO", "Head of Sales", "Engineer", "Designer", "Account Manager", "Buyer",
          "Founder", "Product Manager", "Consultant", "Architect", "Analyst", "Recruiter", "Lawyer", "Partner",
          "Director", "Intern", "Developer", "Marketing Lead", "Office Manager", "Researcher", "Editor",
          "Teacher")  # fmt: skip
TAGS = ("followup", "fair", "lead", "renewal", "vip")
START = datetime(2025, 1, 1, tzinfo=UTC)  # one item a minute from here: 20,000 items span two weeks
CONTACT_SHARE = 3  # one item in three is a contact, the others its notes
ONE_TERM = "maria"  # FIRST[0]: 1 contact in 50 and its notes, which name it
# Name, surname and role: with these pools every Maria is a Garcia and a CEO (contact i with
# i % 50 == 0), so the three terms find what the first does, about 20 items at 1,000 (a full
# page at both sizes: the ratio compares the work per search, not page sizes) and 400 at 20,000.
THREE_TERMS = "maria garcia ceo"
# One person, added once before the workspace fills: the same three items (the contact and
# two notes that name them) match at both sizes, so these queries measure what the
# workspace's size alone does to a search ("independent of the workspace's size", #14).
# The 1.3 applies to them; the common-name queries above find 20 times more at
# 20,000, and what that costs is printed beside them (see BENCHMARKS.md).
RARE_ONE_TERM = "brzeczyszczykiewicz"
RARE_THREE_TERMS = "zbigniew brzeczy qwertz"
RARE: dict[str, object] = {"first_name": "Zbigniew", "last_name": "Brzęczyszczykiewicz", "company": "Qwertz",
                           "title": "Buyer", "email": "zbigniew@qwertz.pl", "phone": "+48 22 555 01 99"}  # fmt: skip


def vocabulary(rng: random.Random) -> list[str]:
    """400 pronounceable words (a real vocabulary's spread of first letters, no dictionary file)."""
    syllables = ["ka", "lo", "mi", "ne", "ta", "ri", "su", "po", "de", "ga", "bu", "fe", "ho", "ja", "ve", "zo",
                 "pra", "stri", "con", "ment", "ber", "tion", "al", "en", "or", "is"]  # fmt: skip
    words: set[str] = set()
    while len(words) < 400:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


@dataclass
class World:
    """What is put into moto for one workspace, and the index's size as it is built."""

    workspace: str
    rng: random.Random = field(default_factory=lambda: random.Random(20261204))
    words: list[str] = field(default_factory=list)
    made: int = 0
    contact_ids: list[str] = field(default_factory=list)
    postings: Counter[str] = field(default_factory=Counter)  # per kind
    bytes: Counter[str] = field(default_factory=Counter)  # per kind: postings and the item's document
    items: Counter[str] = field(default_factory=Counter)


def _size(item: dict[str, dict[str, str]]) -> int:
    """An item's size as DynamoDB bills it: names plus values (UTF-8), strings only here."""
    return sum(len(name.encode()) + len(next(iter(value.values())).encode()) for name, value in item.items())


def _index(world: World, tables: dict[str, Any], kind: str, item_id: str, words: dict[str, str], created: str) -> None:
    from chalicelib.search import keys

    for word, codes in words.items():
        posting = {"bucket": {"S": keys.posting_bucket(world.workspace, word)},
                   "key": {"S": keys.posting_key(word, kind, item_id)}, "fields": {"S": codes},
                   "created": {"S": created}}  # fmt: skip
        tables["search"].put_item(posting)
        world.bytes[kind] += _size(posting)
    listed = json.dumps(words, ensure_ascii=False, separators=(",", ":"))
    document = {"bucket": {"S": keys.doc_bucket(world.workspace)}, "key": {"S": keys.doc_key(kind, item_id)},
                "version": {"S": "1"}, "words": {"S": listed}}  # fmt: skip
    world.bytes[kind] += _size(document)  # counted, not written: a query never reads documents
    world.postings[kind] += len(words)
    world.items[kind] += 1


def _contact(world: World, tables: dict[str, Any], i: int, created: str) -> None:
    from chalicelib.ids import new_id
    from chalicelib.search import text

    first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
    company = COMPANIES[(i * 11) % len(COMPANIES)]
    local, domain = f"{text.fold(first)}.{text.fold(last).replace(chr(39), '')}{i}", company.lower().replace(" ", "")
    fields: dict[str, object] = {"first_name": first, "last_name": last, "company": company,
                                 "title": TITLES[i % len(TITLES)], "email": f"{local}@{domain}.com",
                                 "phone": f"+1 (555) {i // 10000 % 1000:03d}-{i % 10000:04d}"}  # fmt: skip
    contact_id = new_id()
    world.contact_ids.append(contact_id)
    item = {"owner_id": {"S": world.workspace}, "contact_id": {"S": contact_id}, "created_at": {"S": created},
            "updated_at": {"S": created}, "version": {"N": "1"}}  # fmt: skip
    item |= {name: {"S": str(value)} for name, value in fields.items()}
    tables["contacts"].put_item(item)
    _index(world, tables, "contact", contact_id, text.contact_words(fields), created)


def _note(world: World, tables: dict[str, Any], i: int, created: str) -> None:
    from chalicelib.ids import new_id
    from chalicelib.search import text

    about = len(world.contact_ids) - 1  # the latest contact: its index in the pools
    words = " ".join(world.rng.choice(world.words) for _ in range(world.rng.randint(20, 40)))
    name = f"{FIRST[about % len(FIRST)]} {LAST[(about * 7) % len(LAST)]}, {TITLES[about % len(TITLES)]}"
    body = f"{name}: {words}."
    tags = [TAGS[i // 5 % len(TAGS)]] if i % 5 == 0 else []
    body += "".join(f" #{tag}" for tag in tags)
    contact_id, note_id = world.contact_ids[about], new_id()
    item = {"owner_id": {"S": world.workspace}, "note_id": {"S": note_id}, "contact_id": {"S": contact_id},
            "contact_note": {"S": f"{contact_id}#{note_id}"}, "body": {"S": body}, "original_body": {"S": body},
            "tags": {"L": [{"S": tag} for tag in tags]}, "processing_status": {"S": "processed"},
            "processed_at": {"S": created}, "normalizer_version": {"S": "1"}, "created_at": {"S": created},
            "updated_at": {"S": created}, "version": {"N": "2"}}  # fmt: skip
    tables["notes"].put_item(item)
    _index(world, tables, "note", note_id, text.note_words(body, tags), created)


def rare_person(world: World) -> None:
    """RARE and two notes naming them, before anything else is in the workspace."""
    from chalicelib.ids import new_id
    from chalicelib.search import text

    tables = {name: _moto_table(name) for name in ("contacts", "notes", "search")}
    created = START.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    contact_id = new_id()
    item = {"owner_id": {"S": world.workspace}, "contact_id": {"S": contact_id}, "created_at": {"S": created},
            "updated_at": {"S": created}, "version": {"N": "1"}}  # fmt: skip
    tables["contacts"].put_item(item | {name: {"S": str(value)} for name, value in RARE.items()})
    _index(world, tables, "contact", contact_id, text.contact_words(RARE), created)
    for body in ("Zbigniew Brzęczyszczykiewicz of Qwertz asked for a quote.", "Called Zbigniew (Qwertz) back."):
        note_id = new_id()
        tables["notes"].put_item({"owner_id": {"S": world.workspace}, "note_id": {"S": note_id},
                                  "contact_id": {"S": contact_id}, "contact_note": {"S": f"{contact_id}#{note_id}"},
                                  "body": {"S": body}, "processing_status": {"S": "processed"},
                                  "created_at": {"S": created}, "updated_at": {"S": created},
                                  "version": {"N": "2"}})  # fmt: skip
        _index(world, tables, "note", note_id, text.note_words(body, []), created)


def fill(world: World, stop: int) -> None:
    """The workspace's items up to `stop` (contacts and notes, 1:2), straight into moto's backend."""
    tables = {name: _moto_table(name) for name in ("contacts", "notes", "search")}
    for i in range(world.made, stop):
        created = (START + timedelta(minutes=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % CONTACT_SHARE == 0:
            _contact(world, tables, i // CONTACT_SHARE, created)
        else:
            _note(world, tables, i, created)
    world.made = stop


@contextmanager
def key_range_queries(table: Any) -> Iterator[None]:
    """moto's Query on `table` reads only the key range it is asked for, as DynamoDB does.

    moto sorts the whole table on every Query (`Table.all_items`) and then walks it: at
    20,000 items (about 400,000 postings) one Query took tens of seconds, all of it moto's.
    For the duration, each Query on the index sees only its partition's items whose key
    begins with the prefix asked for; moto then does the rest (sort, limit, projection) as
    always, so the answer is the same (`run` checks it once at the first size). The time is
    moto's either way, and subtracted from ours.
    """
    original = table.query

    def query(hash_key: Any, range_comparison: str | None, range_objs: list[Any], *args: Any, **kwargs: Any) -> Any:
        everything = table.items
        partition = everything.get(hash_key, {})
        if range_comparison and range_comparison.upper() == "BEGINS_WITH":
            prefix = range_objs[0].value
            partition = {key: item for key, item in partition.items() if key.value.startswith(prefix)}
        table.items = {hash_key: partition}
        try:
            return original(hash_key, range_comparison, range_objs, *args, **kwargs)
        finally:
            table.items = everything

    table.query = query
    try:
        yield
    finally:
        del table.query  # the class's method again


def _moto_table(name: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib import runtime

    settings = runtime.settings()
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.aws_region].get_table(getattr(settings, f"{name}_table"))


def same_answers(workspace: str) -> None:
    """The narrowed Query answers what moto's own does (checked on the small index)."""
    from chalicelib.search import text
    from chalicelib.search.store import postings

    for q in (ONE_TERM, THREE_TERMS, RARE_ONE_TERM, RARE_THREE_TERMS, "m", "#fair", "5550", "ac"):
        for term in text.parse_query(q):
            plain = postings(workspace, term.lookup, term.exact)
            with key_range_queries(_moto_table("search")):
                narrowed = postings(workspace, term.lookup, term.exact)
            assert plain == narrowed and plain, (q, term)


@dataclass
class Sample:
    total: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)
    calls: set[int] = field(default_factory=set)
    postings_read: set[int] = field(default_factory=set)
    shown: set[int] = field(default_factory=set)


def _searcher(caller: Any, q: str | None) -> Callable[[], tuple[int, int]]:
    """A request invoked as Lambda does (authorizer, then the API): /search?q=..., or /health."""
    from bench.inprocess import PREFIX, proxy_event

    def send() -> tuple[int, int]:
        path = "/search" if q else "/health"
        event = proxy_event("GET", PREFIX + path, PREFIX + path, None, None, caller.authorize())
        if q:
            event["queryStringParameters"], event["multiValueQueryStringParameters"] = {"q": q}, {"q": [q]}
        answer = caller.app.app(event, None)
        shown = len(json.loads(answer["body"])["items"]) if q else 0
        return int(answer["statusCode"]), shown

    return send


def measure(requests: dict[str, Callable[[], tuple[int, int]]], clock: Clock) -> dict[str, Sample]:
    samples = {name: Sample() for name in requests}
    for send in requests.values():
        send()  # untimed: the first request at a size fills caches (the table's pages, our schemas)
    for _ in range(SAMPLES):
        for name, send in requests.items():
            clock.reset()
            start = time.perf_counter()
            status, shown = send()
            elapsed = time.perf_counter() - start
            assert status == 200, (name, status)
            assert "Scan" not in clock.sent, name
            samples[name].total.append(elapsed)
            samples[name].ours.append(elapsed - clock.emulator)
            samples[name].calls.add(len(clock.sent))
            samples[name].postings_read.add(clock.items_read)
            samples[name].shown.add(shown)
    return samples


@contextmanager
def _batch_writes() -> Iterator[Counter[str]]:
    """BatchWriteItem calls and the items they carry, and the other calls on the index table."""
    from chalicelib import runtime
    from chalicelib.models import dynamodb_client

    seen: Counter[str] = Counter()
    index_table = runtime.settings().search_table

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "BatchWriteItem":
            writes = params.get("RequestItems", {}).get(index_table, [])
            seen["BatchWriteItem"] += 1 if writes else 0
            seen["postings written"] += len(writes)
        elif params.get("TableName") == index_table:
            seen[model.name] += 1

    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb", hook)
    try:
        yield seen
    finally:
        events.unregister("before-parameter-build.dynamodb", hook)


def index_writes(alice: Any, world: World) -> list[Figure]:
    """Contacts and notes created through the API, their stream records delivered to the
    indexers: what the index writes per item (INFO: no budget)."""
    from tests.search import index_now

    count = 10
    figures = []
    made = [alice.post("/contacts", {"first_name": FIRST[i], "last_name": LAST[i], "email": f"p{i}@acme.com",
                                     "phone": "+1 (555) 123-4567", "company": COMPANIES[i], "title": TITLES[i]}).json
            for i in range(count)]  # fmt: skip
    with _batch_writes() as seen:
        index_now(alice.client)
    figures += _per_item("contact", seen, count)
    for i, contact in enumerate(made):
        body = " ".join(world.rng.choice(world.words) for _ in range(30)) + f" #{TAGS[i % len(TAGS)]}"
        alice.post(f"/contacts/{contact['id']}/notes", {"body": body})
    with _batch_writes() as seen:
        index_now(alice.client)  # the note's record, then the normalizer's write-back's record
    return figures + _per_item("note", seen, count)


def _per_item(kind: str, seen: Counter[str], count: int) -> list[Figure]:
    calls = ", ".join(f"{n / count:g} {op}" for op, n in sorted(seen.items()) if op != "postings written")
    return [
        Figure("search", f"index writes per {kind} created: postings", seen["postings written"] / count, "items", None),
        Figure("search", f"index calls per {kind} created ({calls})",
               sum(n for op, n in seen.items() if op != "postings written") / count, "calls", None),
    ]  # fmt: skip


def run() -> list[Figure]:
    from bench.inprocess import LambdaCaller, moto_api

    with moto_api() as anonymous:
        alice = anonymous.sign_up("alice")
        world = World(alice.user["id"])
        world.words = vocabulary(world.rng)
        figures = index_writes(alice, world)
        caller = LambdaCaller(alice.token or "")
        requests = {"1 term": _searcher(caller, RARE_ONE_TERM), "3 terms": _searcher(caller, RARE_THREE_TERMS),
                    "1 common term": _searcher(caller, ONE_TERM), "3 common terms": _searcher(caller, THREE_TERMS),
                    CONTROL: _searcher(caller, None)}  # fmt: skip
        results: list[dict[str, Sample]] = []
        rare_person(world)
        fill(world, SIZES[0])
        same_answers(world.workspace)
        with clocked() as clock, key_range_queries(_moto_table("search")):
            for size in SIZES:
                fill(world, size)
                gc.collect()
                gc.freeze()  # moto's tables live in this heap, as they never would on AWS (see scale.py)
                results.append(measure(requests, clock))
        gc.unfreeze()
    return figures + _figures(results) + _size_figures(world)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _figures(results: list[dict[str, Sample]]) -> list[Figure]:
    small, large = results
    at = f"at {SIZES[1]:,} / at {SIZES[0]:,}"
    med = statistics.median
    drift = med(large[CONTROL].ours) / med(small[CONTROL].ours)
    figures = [Figure("search", f"{CONTROL} (no table read): ours p50 {at}, the machine's drift", drift, "x", None)]
    for name, terms in (("1 term", 1), ("3 terms", 3), ("1 common term", 1), ("3 common terms", 3)):
        a, b = small[name], large[name]
        budget = None if "common" in name else 1.3  # common: 20 times the matches at 20,000 (RARE's comment)
        figures += [
            Figure("search", f"{name}: ours (all but moto) p50 {at} ({med(a.ours) * 1e3:.1f} -> "
                   f"{med(b.ours) * 1e3:.1f} ms), over the drift", med(b.ours) / med(a.ours) / drift, "x", budget),
            Figure("search", f"{name}: ours p99 {at} ({_p99(a.ours) * 1e3:.1f} -> {_p99(b.ours) * 1e3:.1f} ms), "
                   "over the drift", _p99(b.ours) / _p99(a.ours) / drift, "x", budget),
            Figure("search", f"{name}: end to end p50 {at} ({med(a.total) * 1e3:.1f} -> "
                   f"{med(b.total) * 1e3:.1f} ms, moto included)", med(b.total) / med(a.total), "x", None),
            Figure("search", f"{name}: end to end p99 {at} ({_p99(a.total) * 1e3:.1f} -> "
                   f"{_p99(b.total) * 1e3:.1f} ms, moto included)", _p99(b.total) / _p99(a.total), "x", None),
            Figure("search", f"{name}: postings read {at} ({max(a.postings_read)} -> {max(b.postings_read)}; "
                   f"shown {max(a.shown)} -> {max(b.shown)})", max(b.postings_read), "items", None),
            Figure("search", f"{name}: DynamoDB calls per search, the limiter's included", max(a.calls | b.calls),
                   "calls", terms + 2),
        ]  # fmt: skip
    return figures


def _size_figures(world: World) -> list[Figure]:
    figures = []
    for kind in ("contact", "note"):
        n = max(world.items[kind], 1)
        figures += [
            Figure("search", f"index entries per {kind} (postings; plus one document)", world.postings[kind] / n,
                   "items", None),
            Figure("search", f"index size per {kind} (postings and document)", world.bytes[kind] / n, "bytes", None),
        ]  # fmt: skip
    return figures
