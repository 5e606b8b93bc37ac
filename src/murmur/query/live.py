"""The query layer's part of ingest: what the runtime calls on every stored batch.

``batch_hooks(store)`` returns the hooks ``murmur.runtime`` runs per batch (its ``BatchHook``
protocol): each takes the batch's posts and returns a writer that the store runs inside the batch's
write transaction. Ours computes each post's ``Doc`` once and uses it twice: for the search index
(``post_search``) and for live monitor matching (``monitor_matches``), so the index, the matches and
the posts become durable together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb

from murmur.query.index import doc_of, ensure_current_index, index_rows, write_index_table
from murmur.query.monitors import MonitorStage, write_match_rows
from murmur.store import Store
from murmur.types import Post

Writer = Callable[[duckdb.DuckDBPyConnection], None]


class QueryLayerHook:
    """Search index + live monitor matches for one batch (see module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stage = MonitorStage(store.conn)

    def __call__(self, posts: Sequence[Post]) -> Writer | None:
        if not posts:
            return None
        docs = [doc_of(p) for p in posts]
        rows = index_rows(posts, docs)
        matches = self.stage.match_rows(posts, docs)

        def write(conn: duckdb.DuckDBPyConnection) -> None:
            write_index_table(conn, rows, replace=self.store.replacing)
            write_match_rows(conn, matches)

        return write


def batch_hooks(store: Store) -> list[Callable[[Sequence[Post]], Writer | None]]:
    """The hooks ``murmur.service`` passes to the runtime for ``store``; first the search index is
    brought up to date (rebuilt after a tokenizer change, filled where posts lack it)."""
    ensure_current_index(store.conn)
    return [QueryLayerHook(store)]
