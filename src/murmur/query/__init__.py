"""The query language and the questions asked of the store.

::

    text ──parse──▶ Query (ast.py) ──┬── matcher.py   live: every monitor on every post at ingest
                                     └── sql.py       history: a DuckDB predicate over post_search

Both sides test the same needles against the same per-post strings (``index.Doc``: folded search text
and field keys, built by ``text.py``/``index.py``), so a query finds the same posts live and over
history. ``search.py`` answers ad-hoc queries (k-anonymous counts + example posts), ``monitors.py``
saves monitors (with backfill), ``live.py`` is what the runtime calls per batch, ``aggregate.py``
holds the k-anonymous counting. Grammar and examples: docs/query-language.md.
"""

from murmur.query.ast import Query
from murmur.query.index import Doc, doc_of, index_rows, write_token_index
from murmur.query.matcher import MonitorMatcher, matches
from murmur.query.parser import AuthorFieldError, parse
from murmur.query.sql import compile_where

__all__ = [
    "AuthorFieldError",
    "Doc",
    "MonitorMatcher",
    "Query",
    "compile_where",
    "doc_of",
    "index_rows",
    "matches",
    "parse",
    "write_token_index",
]
