"""The search index's keys (chalicelib.models.SearchEntry): the one place their shape is written.

Words never hold "|" (text.words yields letters and digits; emails and tags add only
"@", ".", "-", "+", "_" and "#"), so "|" separates a posting key's parts unambiguously.
"""

from __future__ import annotations

KINDS = {"contact": "c", "note": "n"}
KIND_NAMES = {code: name for name, code in KINDS.items()}
SEP = "|"
DOC = "doc"


def posting_bucket(workspace_id: str, word: str) -> str:
    return f"{workspace_id}#{word[0]}"


def posting_key(word: str, kind: str, item_id: str) -> str:
    return f"{word}{SEP}{KINDS[kind]}{SEP}{item_id}"


def parse_posting_key(key: str) -> tuple[str, str, str]:
    """(word, kind name, item id) of a posting key."""
    word, code, item_id = key.rsplit(SEP, 2)
    return word, KIND_NAMES[code], item_id


def lookup_prefix(word: str, exact: bool) -> str:
    """The key prefix a term reads: any word starting with it, or (a tag) the word itself."""
    return word + SEP if exact else word


def doc_bucket(workspace_id: str) -> str:
    return f"{workspace_id}#{DOC}"


def doc_key(kind: str, item_id: str) -> str:
    return f"{KINDS[kind]}{SEP}{item_id}"
