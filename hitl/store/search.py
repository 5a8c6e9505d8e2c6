"""What the reviewers' queue searches: a review's text, as a reviewer sees it.

A review's searchable text (`reviews.search`) is the text values of its output, its prompt
and its task's input — strings and numbers, never the JSON's key names or punctuation — one
value a line, case-folded. The store writes it with the review, in the same statement; the
database indexes it for substring search: SQLite with an FTS5 table and its `trigram`
tokenizer (`review_search`, which new reviews enter in batches: a search reads those not in it
yet), PostgreSQL with a `pg_trgm` GIN index.
A query is case-folded the same way, here, in Python, so both databases compare folded text
with folded text and agree on what "any case" means (`José` finds `JOSÉ`; `straße` finds
`STRASSE`).

A trigram index needs three characters to look anything up: a query of one or two characters
(`李雷`, a whole name in Chinese) reads the searchable text of each review of the status asked
for instead (`docs/design.md`, the reviewers' queue).
"""

from __future__ import annotations

import json
from typing import Any

# Characters of a query that a trigram index can look up; shorter ones are a scan.
TRIGRAM = 3
# The most of a review's text that is indexed: a flow whose output is megabytes long would
# otherwise cost its review's transaction a trigram per character (35 ms a megabyte here).
MAX_CHARS = 1_000_000


def fold(text: str) -> str:
    """Text as it is compared: Unicode case folding (`str.casefold`)."""
    return text.casefold()


def searchable(request: str | dict[str, Any], task_input: str | None) -> str:
    """A review's searchable text, from its request (a `ReviewRequest`'s JSON, as text or
    already parsed) and its task's input (JSON text)."""
    shown = json.loads(request) if isinstance(request, str) else request
    values: list[str] = []
    if isinstance(shown, dict):
        _values(shown.get("output"), values)
        _values(shown.get("prompt"), values)
    if task_input is not None:
        _values(json.loads(task_input), values)
    # NUL is a space: PostgreSQL stores no NUL in text, SQLite's FTS5 stops reading a value
    # at one, and no query holds one (the API refuses it).
    return fold("\n".join(values)).replace("\0", " ")[:MAX_CHARS]


def _values(value: Any, into: list[str]) -> None:
    """The strings and numbers in a JSON value, in order; not its keys (iterative: a deeply
    nested value must not exhaust the stack)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item:
                into.append(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            into.append(json.dumps(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def indexed(folded: str) -> bool:
    """Whether the index can answer a search for `folded`; else it is a scan."""
    return len(folded) >= TRIGRAM


def fts_phrase(folded: str) -> str:
    """An FTS5 query that matches `folded` as a substring: one quoted phrase, which the
    trigram tokenizer splits into consecutive trigrams. Inside quotes only `"` is special."""
    return '"' + folded.replace('"', '""') + '"'


def like_pattern(folded: str) -> str:
    """A LIKE pattern (`ESCAPE '!'`) that matches `folded` as a substring, its `%`, `_` and
    `!` taken literally."""
    escaped = folded.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"
