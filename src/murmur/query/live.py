"""The query layer's part of ingest: what the runtime calls on every stored batch.

``batch_hooks(store)`` returns the hooks ``murmur.runtime`` runs per batch (its ``BatchHook`` and
``PreparedHook`` protocols): each takes the batch's posts and returns a writer that the store runs
inside the batch's write transaction. Ours computes each post's ``Doc`` once and uses it twice: for
the search index (``post_search``) and for live monitor matching (``monitor_matches``), so the
index, the matches and the posts become durable together.

The per-post work (tokenizing, field keys, Bloom bits) need not run in the runtime's own process,
the one writer: with worker processes, each worker turns its enriched batch into ``post_search``
rows (``prepare``: ``index.index_rows``), and here only the monitors are matched against those rows
(``write_prepared``) and the rows written. The runtime does so only when its ordered stage assigns
none of the fields the rows read (``reads``: ``index.INDEX_READS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from murmur.query.index import INDEX_READS, doc_of, ensure_current_index, index_rows, write_index_table
from murmur.query.monitors import MonitorStage, write_match_rows
from murmur.store import Store
from murmur.types import Post

Writer = Callable[[duckdb.DuckDBPyConnection], None]
"""What the runtime's store runs inside a batch's write transaction (``murmur.runtime.Writer``)."""


class QueryLayerHook:
    """Search index + live monitor matches for one batch (see module doc)."""

    reads = INDEX_READS
    prepare = staticmethod(index_rows)  # a module-level function: pickled by name for the workers

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stage = MonitorStage(store.conn)

    def __call__(self, posts: Sequence[Post]) -> Writer | None:
        if not posts:
            return None
        docs = [doc_of(p) for p in posts]
        return self._writer(index_rows(posts, docs), self.stage.match_rows(posts, docs))

    def write_prepared(self, rows: pa.Table) -> Writer | None:
        """The writer for a batch whose ``post_search`` rows a worker prepared (``prepare``)."""
        if rows.num_rows == 0:
            return None
        return self._writer(rows, self.stage.match_index_rows(rows))

    def _writer(self, rows: pa.Table, matches: pa.Table) -> Writer:
        def write(conn: duckdb.DuckDBPyConnection) -> None:
            write_index_table(conn, rows, replace=self.store.replacing)
            write_match_rows(conn, matches)

        return write


def batch_hooks(store: Store) -> list[QueryLayerHook]:
    """The hooks ``murmur.service`` passes to the runtime for ``store``; first the search index is
    brought up to date (rebuilt after a tokenizer change, filled where posts lack it)."""
    ensure_current_index(store.conn)
    return [QueryLayerHook(store)]
