"""What search indexes and how a query is read: folding, words, fields and terms.

Pure functions shared by the index (the stream side) and the query (the request side), so
that both fold text the same way. Written by hand: the rules are this product's own. The
building blocks are the standard library's (unicodedata, re) and phonenumbers for the
national number. No library was taken for folding: anyascii and Unidecode transliterate
every script to ASCII (a Greek or Chinese name would stop matching its own letters), and
what is wanted is only Latin diacritics removed, which NFKD does, plus the handful of
Latin letters that have no decomposition (the table below).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

# Fields by one-letter code (postings store codes: a few bytes each instead of names).
FIELD_NAMES = {
    "f": "first_name",
    "l": "last_name",
    "e": "email",
    "p": "phone",
    "c": "company",
    "t": "title",
    "b": "body",
    "g": "tags",
}
# Names above email (and phone) above company/title above note text (#14's ranking).
WEIGHTS = {"f": 4, "l": 4, "e": 3, "p": 3, "c": 2, "t": 2, "b": 1, "g": 1}
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "company", "title")
MAX_NOTE_WORDS = 2000  # a note's first 2,000 distinct words are indexed
MAX_WORD_CHARS = 64  # longer "words" (a pasted hash, a URL) are cut: matched by their start
MAX_NOTE_TAGS = 100  # a note's first 100 tags are indexed
# A note's words are listed in its index document (one DynamoDB item, at most 400 KB): they
# stop here, whatever the script (NFKD can make one character four, e.g. "㍿" -> "株式会社").
MAX_NOTE_WORD_BYTES = 300_000
MAX_QUERY_CHARS = 200
MAX_TERMS = 8

# Latin letters NFKD does not decompose into a base letter and a mark.
_LATIN_BASES = {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "ŀ": "l", "ŧ": "t", "æ": "ae", "œ": "oe",
                "þ": "th", "ĳ": "ij", "ß": "ss"}  # fmt: skip
_UNDECOMPOSABLE = str.maketrans(_LATIN_BASES)
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; _ and punctuation split words
_DIGITS_TERM = re.compile(r"\+?[\d().\-/]*\d[\d().\-/]*")
_EMAILISH = re.compile(r"[^\s@]*@[^\s@]*|[^\W_][\w\-]*(\.[\w\-]+)+")


def fold(text: str) -> str:
    """Lowercase without diacritics: "Müller-Łukasiewicz" -> "muller-lukasiewicz"; other scripts kept."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped.translate(_UNDECOMPOSABLE))


def words(text: str) -> list[str]:
    """The folded words of a text, in order, repeats kept."""
    return [word[:MAX_WORD_CHARS] for word in _WORD.findall(fold(text))]


def digits(text: str) -> str:
    """The decimal digits of a text as ASCII, whatever the script ("٥٥٥" and "５５５" -> "555")."""
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


def tag_word(tag: str) -> str:
    """How a tag is indexed and looked up: "#" and the tag as the normalizer keeps it (NFC,
    lowercase), cut like any word."""
    return "#" + unicodedata.normalize("NFC", tag).lower()[:MAX_WORD_CHARS]


def email_words(email: str) -> list[str]:
    """An address whole, its domain, and the words of its local part ("john.doe@example.com" ->
    john.doe@example.com, example.com, john, doe)."""
    address = fold(email.strip())
    local, _, domain = address.rpartition("@")
    found = [address[:MAX_WORD_CHARS]]
    if domain:
        found.append(domain[:MAX_WORD_CHARS])
    return found + words(local)


def phone_words(phone: str | None, e164: str | None) -> list[str]:
    """A phone's digits as typed, in E.164 without "+", and its national number: "555" and
    "5551234" find "+1 (555) 123-4567" whatever the formatting.

    The national number is read from E.164 when the phone is valid, else from the phone as
    typed when it starts with a country code: a number phonenumbers calls invalid (the
    fictional 555 exchange, a new range its metadata does not know yet) is still searched.
    """
    found = [digits(phone or "")]
    if e164:
        found.append(digits(e164))
    number = e164 or (phone or "").strip()
    if number.startswith("+"):
        import phonenumbers  # on first use: the API's cold start does not load its metadata

        with contextlib.suppress(phonenumbers.NumberParseException):  # not a number: its digits as typed
            found.append(str(phonenumbers.parse(number).national_number))
    return list(dict.fromkeys(word for word in found if word))


def _add(index: dict[str, str], code: str, found: list[str]) -> None:
    for word in found:
        if code not in index.get(word, ""):
            index[word] = index.get(word, "") + code


def contact_words(contact: dict[str, object]) -> dict[str, str]:
    """{word: field codes} for a contact (a dict with the API's field names)."""
    index: dict[str, str] = {}
    for name, code in (("first_name", "f"), ("last_name", "l"), ("company", "c"), ("title", "t")):
        _add(index, code, words(str(contact.get(name) or "")))
    if contact.get("email"):
        _add(index, "e", email_words(str(contact["email"])))
    _add(index, "p", phone_words(_text(contact.get("phone")), _text(contact.get("phone_e164"))))
    return index


def note_words(body: str, tags: list[str] | None) -> dict[str, str]:
    """{word: field codes} for a note: its first MAX_NOTE_WORDS distinct words, and its tags as "#tag"."""
    index: dict[str, str] = {}
    size = 0
    for word in words(body):
        if word not in index:
            size += len(word.encode()) + 8  # the word, its codes and the JSON around them
            if len(index) >= MAX_NOTE_WORDS or size > MAX_NOTE_WORD_BYTES:
                break
            index[word] = "b"
    _add(index, "g", [tag_word(tag) for tag in (tags or [])[:MAX_NOTE_TAGS]])
    return index


def _text(value: object) -> str | None:
    return str(value) if value else None


@dataclass(frozen=True)
class Term:
    """One term of a query: the words an item must hold (each by prefix, or exactly for a tag).

    `lookup` is the one word the index is read by (the longest: the most selective); the
    others are checked on the loaded items, so a term costs one Query whatever it holds.
    """

    text: str
    words: tuple[str, ...]
    exact: bool = False  # a #tag: the tag itself, not a prefix

    @cached_property  # read once per posting a search scores
    def lookup(self) -> str:
        return max(self.words, key=len)


class QueryError(ValueError):
    """A query that cannot be searched; the message says why (answered as a 422)."""


def parse_query(q: str) -> list[Term]:
    """The terms of a query (ANDed): 1-200 characters after trimming, at most MAX_TERMS terms.

    A query of only punctuation ("-", "#") has no terms and matches nothing: it is not refused,
    so that what is refused can be published as one pattern (schemas.SEARCH_QUERY_PATTERN;
    "holds a letter of any script" has no portable regex).
    """
    text = q.strip()
    if not text:
        raise QueryError("The query is blank.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"The query is longer than {MAX_QUERY_CHARS} characters.")
    raw = text.split()
    if len(raw) > MAX_TERMS:
        raise QueryError(f"The query has {len(raw)} terms; at most {MAX_TERMS} are searched.")
    return [term for term in (_term(part) for part in raw) if term is not None]


def _term(part: str) -> Term | None:
    if part.startswith("#") and len(part) > 1:
        return Term(part, (tag_word(part[1:]),), exact=True)
    if _DIGITS_TERM.fullmatch(part):
        return Term(part, (digits(part),))  # \d is any decimal digit: digits() keeps them all
    if _EMAILISH.fullmatch(part):
        folded = fold(part).strip(".-")[:MAX_WORD_CHARS]
        return Term(part, (folded,)) if folded else None
    found = tuple(dict.fromkeys(words(part)))
    return Term(part, found) if found else None


WHOLE_WORD = 100  # above any sum of field weights (at most MAX_TERMS x 4)


def word_matches(term: Term, query_word: str, word: str) -> bool:
    return word == query_word if term.exact else word.startswith(query_word)


def score(term: Term, word: str, codes: str) -> int | None:
    """What one indexed word scores for a term, by the term's lookup word; None: no match.

    Whole-word above prefix, then the best field holding it. A search's score is the sum
    over its terms of each item's best word; ties go to the newest item.
    """
    if not word_matches(term, term.lookup, word):
        return None
    return (WHOLE_WORD if word == term.lookup else 0) + max(WEIGHTS[code] for code in codes)


def matched_fields(terms: list[Term], index: dict[str, str]) -> list[str] | None:
    """The fields in which an item (its {word: codes}) holds every word of every term, or None
    when it does not hold them all (the index was behind the item: a stale match)."""
    codes: set[str] = set()
    for term in terms:
        for query_word in term.words:
            held = [word for word in index if word_matches(term, query_word, word)]
            if not held:
                return None
            codes.update(code for word in held for code in index[word])
    return [name for code, name in FIELD_NAMES.items() if code in codes]
