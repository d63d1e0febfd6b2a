"""A search: terms read from the index, ranked, a page of the ranking loaded and verified.

Per distinct term, one Query (chalicelib.search.store.postings); the items holding every
term, each scored by the sum over terms of its best posting (text.score); ranked by score,
then newest first, then kind and id, so the same query over the same index gives the same
order. A page is the next `limit` of that ranking after the cursor's position, loaded in one
BatchGetItem and checked against the items as they are now (text.matched_fields): an item
the index has not caught up with (renamed, edited) or that is gone is left out, so a search
never shows an item that no longer matches. Calls: one Query per distinct term, plus one
BatchGetItem when there is anything to show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib import observability
from chalicelib.config import Settings
from chalicelib.errors import InvalidCursor
from chalicelib.models import Contact, Note
from chalicelib.outage import unavailable
from chalicelib.pagination import decode_position, encode_position
from chalicelib.schemas import SearchContactHit, SearchNoteHit, SearchPage, SearchQuery
from chalicelib.search import keys, text
from chalicelib.search.store import MAX_POSTINGS_PER_TERM, Loaded, Posting, Ref, load, postings
from chalicelib.services import contact_out, note_out

POSITION_PARTS = 3  # score, id, kind code


@dataclass(frozen=True)
class Hit:
    kind: str  # "contact" | "note"
    item_id: str
    score: int

    @property
    def ref(self) -> Ref:
        return self.kind, self.item_id

    @property
    def position(self) -> tuple[int, str, str]:
        """Where the hit ranks: larger first. Score, then newest first: ids are ULIDs, made
        when the item was (so ordered as created_at is, and unique: no further tie)."""
        return self.score, self.item_id, keys.KINDS[self.kind]


def scope(terms: list[text.Term], kind: str | None) -> str:
    """What a cursor is bound to: the query as searched (folded terms) and the type."""
    searched = "\x1e".join(("=" if t.exact else "~") + "\x1d".join(t.words) for t in terms)
    return f"search\x1e{kind or ''}\x1e{searched}"


def term_scores(found: list[Posting], term: text.Term, kind: str | None) -> dict[Ref, int]:
    """Each item's best posting for one term."""
    best: dict[Ref, int] = {}
    for word, item_kind, item_id, fields in found:
        if kind is not None and item_kind != kind:
            # Filtered here, not by a FilterExpression: DynamoDB refuses one on a key
            # attribute, and reads (and bills) the same postings either way.
            continue
        points = text.score(term, word, fields)
        if points is not None and points > best.get((item_kind, item_id), -1):
            best[(item_kind, item_id)] = points
    return best


class Deadline:
    """When a search stops starting store calls (Settings.search_store_seconds)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None  # at the first call

    def check(self) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        elif now - self.started > self.seconds:
            raise unavailable("DynamoDB", "the search ran out of time", "is slow", 1)


def ranked(workspace_id: str, terms: list[text.Term], kind: str | None, deadline: Deadline) -> list[Hit]:
    """Every item holding every term (as far as each term's Query reaches), best first."""
    read: dict[tuple[str, bool], list[Posting]] = {}  # a repeated lookup is read once
    combined: dict[Ref, int] | None = None
    for term in terms:
        lookup = (term.lookup, term.exact)
        if lookup not in read:
            deadline.check()
            read[lookup] = postings(workspace_id, term.lookup, term.exact)
            if len(read[lookup]) >= MAX_POSTINGS_PER_TERM:
                observability.count("SearchTermsCut")
        scores = term_scores(read[lookup], term, kind)
        if combined is not None:
            scores = {ref: points + scores[ref] for ref, points in combined.items() if ref in scores}
        combined = scores
        if not combined:
            return []  # no item holds every term so far: the other terms need no Query
    hits = [Hit(item_kind, item_id, points) for (item_kind, item_id), points in (combined or {}).items()]
    return sorted(hits, key=lambda hit: hit.position, reverse=True)


def _after(settings: Settings, workspace_id: str, where: str, cursor: str | None) -> tuple[int, str, str] | None:
    if cursor is None:
        return None
    score, item_id, code = decode_position(settings.signing_secret, workspace_id, where, cursor, POSITION_PARTS)
    if not score.isdigit() or code not in keys.KIND_NAMES:  # signed by us, so never; checked all the same
        raise InvalidCursor("The cursor is not valid for this query.")
    return int(score), item_id, code


def _words(item: Contact | Note) -> dict[str, str]:
    if isinstance(item, Contact):
        return text.contact_words(contact_out(item).model_dump())
    return text.note_words(item.body, [str(tag) for tag in item.tags or []])


def _shown(hit: Hit, item: Contact | Note, matched: list[str]) -> SearchContactHit | SearchNoteHit:
    if isinstance(item, Contact):
        return SearchContactHit(
            type="contact", id=hit.item_id, score=hit.score, matched=matched, contact=contact_out(item)
        )
    out = note_out(item)
    return SearchNoteHit(
        type="note", id=hit.item_id, score=hit.score, matched=matched, contact_id=out.contact_id, note=out
    )


def _page(
    window: list[Hit], loaded: Loaded, terms: list[text.Term]
) -> tuple[list[SearchContactHit | SearchNoteHit], int]:
    """The window's items that still match, in order, and how many hits of the window were
    settled (shown or dropped): up to the first one DynamoDB left unread."""
    shown: list[SearchContactHit | SearchNoteHit] = []
    for settled, hit in enumerate(window):
        if hit.ref in loaded.unprocessed:
            return shown, settled
        item = loaded.items.get(hit.ref)
        matched = text.matched_fields(terms, _words(item)) if item is not None else None
        if item is None or matched is None:
            observability.count("SearchHitsDropped")  # gone, or the index is behind it
            continue
        shown.append(_shown(hit, item, matched))
    return shown, len(window)


def search(settings: Settings, workspace_id: str, query: SearchQuery) -> SearchPage:
    terms = text.parse_query(query.q)  # valid: SearchQuery checked it
    where = scope(terms, query.type)
    after = _after(settings, workspace_id, where, query.cursor)  # a bad cursor costs no call
    deadline = Deadline(settings.search_store_seconds)
    hits = ranked(workspace_id, terms, query.type, deadline) if terms else []
    start = next((i for i, hit in enumerate(hits) if after is None or hit.position < after), len(hits))
    window = hits[start : start + query.limit]
    if not window:
        return SearchPage(items=[], next_cursor=None)
    deadline.check()
    shown, settled = _page(window, load(workspace_id, [hit.ref for hit in window]), terms)
    if settled == 0:  # DynamoDB read none of the page (throttling): retrying will
        raise unavailable("DynamoDB", "BatchGetItem left the page unread", "is busy", 1)
    last = start + settled - 1
    cursor = None
    if last + 1 < len(hits):
        cursor = encode_position(settings.signing_secret, workspace_id, where, tuple(map(str, hits[last].position)))
    return SearchPage(items=shown, next_cursor=cursor)
