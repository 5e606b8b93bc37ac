"""Posts as Arrow columns: the stored row layout, and the batch that carries posts between processes.

``POST_SCHEMA`` is the ``posts`` table's row as Arrow types; ``posts_to_table`` and
``posts_from_table`` convert between ``Post`` objects and such tables (the store's reads come back
as tables too).

``PostBatch`` holds one batch's posts either as ``Post`` objects or as a table, and converts on
first use. It is how posts cross from the runtime's worker processes to its writer: pickling a few
thousand ``Post`` objects and reading them back costs about 19 µs a post (building their lists,
strings and datetimes one by one), while their table costs about 5 µs to build and next to nothing
to send. On the writer's side the ordered stage reads the one column it needs (``column``,
``set_column``) and the store writes the table as it came; ``Post`` objects are built only for what
asks for them (the query layer's hooks), from whole columns at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import pyarrow as pa

from murmur.types import Post

_TS: pa.DataType = pa.timestamp("us", tz="UTC")
_STRS: pa.DataType = pa.list_(pa.string())
POST_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("post_id", pa.string()),
        ("created_at", _TS),
        ("ingested_at", _TS),
        ("author_key", pa.string()),
        ("text", pa.string()),
        ("lang_declared", pa.string()),
        ("site", pa.string()),
        ("community", pa.string()),
        ("domains", _STRS),
        ("hashtags", _STRS),
        ("mentions", _STRS),
        ("is_reply", pa.bool_()),
        ("is_repost", pa.bool_()),
        ("has_media", pa.bool_()),
        ("has_link", pa.bool_()),
        ("country", pa.string()),
        ("redactions", pa.int32()),
        ("lang", pa.string()),
        ("lang_conf", pa.float64()),
        ("sentiment", pa.string()),
        ("sentiment_score", pa.float64()),
        ("sentiment_model", pa.string()),
        ("terms", _STRS),
        ("simhash", pa.uint64()),
        ("dup_cluster", pa.string()),
        ("embedding_model", pa.string()),
    ]
)
"""The ``posts`` table's columns (every ``Post`` field but the embedding, which has its own table,
and the MinHash signature, which is not stored)."""

POST_COLUMNS: tuple[str, ...] = tuple(POST_SCHEMA.names)

BATCH_SCHEMA = POST_SCHEMA.append(pa.field("embedding", pa.list_(pa.float32()))).append(
    pa.field("minhash", pa.binary())
)
"""Every ``Post`` field: what a ``PostBatch`` carries (the stored row, the embedding, which has its
own table, and the MinHash signature, which only the near-duplicate clusters read)."""

_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Post))  # ``Post(*values)`` order
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LISTS = frozenset({"domains", "hashtags", "mentions"})  # never None on a Post

if set(_FIELDS) != set(BATCH_SCHEMA.names):  # pragma: no cover - a Post field added without a column
    _msg = f"BATCH_SCHEMA and Post disagree: {sorted(set(_FIELDS) ^ set(BATCH_SCHEMA.names))}"
    raise AssertionError(_msg)


def posts_to_table(posts: Sequence[Post], schema: pa.Schema = BATCH_SCHEMA) -> pa.Table:
    """The posts as one table of ``schema``'s columns (``POST_SCHEMA``: the stored row)."""
    if not posts:
        return schema.empty_table()
    return pa.Table.from_arrays(
        [pa.array(list(map(attrgetter(f.name), posts)), type=f.type) for f in schema], schema=schema
    )


def _values(column: pa.ChunkedArray[Any]) -> list[Any]:
    if pa.types.is_timestamp(column.type):
        # pyarrow builds zone-aware datetimes slowly (~5 µs each); from microseconds it is ~0.2 µs
        micros = column.cast(_TS).cast(pa.int64()).to_pylist()
        return [None if m is None else _EPOCH + timedelta(microseconds=m) for m in micros]
    return column.to_pylist()


def posts_from_table(table: pa.Table) -> list[Post]:
    """``Post`` objects from a table with (at least) the ``posts`` table's columns, e.g. a batch's
    or a ``SELECT`` of stored posts; a column it lacks (the embedding) stays at its default."""
    n = table.num_rows
    names = set(table.column_names)
    columns: list[list[Any]] = []
    for name in _FIELDS:
        if name not in names:
            if name in _LISTS:
                columns.append([[] for _ in range(n)])
            else:
                columns.append([None] * n)
            continue
        values = _values(table.column(name))
        if name in _LISTS:
            values = [v if v is not None else [] for v in values]
        columns.append(values)
    return [Post(*row) for row in zip(*columns, strict=True)]


def last_per_key(table: pa.Table) -> pa.Table:
    """One row per (platform, post_id), the last one: last write wins within a batch, as it does
    across batches."""
    keys = zip(table.column("platform").to_pylist(), table.column("post_id").to_pylist(), strict=True)
    last = {key: i for i, key in enumerate(keys)}
    if len(last) == table.num_rows:
        return table
    return table.take(sorted(last.values()))


class PostBatch:
    """One batch's posts, held as ``Post`` objects or as a ``BATCH_SCHEMA`` table (module doc).

    ``posts`` builds the objects from the table on first use; from then on the objects are the
    batch (change them freely: ``table()`` reads them). ``column`` and ``set_column`` read and set
    one field of every post in whichever form the batch is held. Pickled, a batch is its table."""

    __slots__ = ("_posts", "_table")

    def __init__(self, posts: list[Post] | None = None, *, table: pa.Table | None = None) -> None:
        if posts is not None and table is not None:
            msg = "PostBatch: give posts or a table, not both"
            raise ValueError(msg)
        self._table = table
        self._posts: list[Post] | None = None if table is not None else (posts if posts is not None else [])

    def __len__(self) -> int:
        return len(self._posts) if self._posts is not None else self._table_or_fail().num_rows

    def __repr__(self) -> str:
        form = "posts" if self._posts is not None else "table"
        return f"PostBatch({len(self)} posts, held as {form})"

    def _table_or_fail(self) -> pa.Table:
        assert self._table is not None, "a PostBatch holds posts or a table"
        return self._table

    @property
    def posts(self) -> list[Post]:
        if self._posts is None:
            self._posts = posts_from_table(self._table_or_fail())
            self._table = None
        return self._posts

    def table(self) -> pa.Table:
        """The batch as a ``BATCH_SCHEMA`` table (built from the posts when held as posts)."""
        if self._posts is not None:
            return posts_to_table(self._posts)
        return self._table_or_fail()

    def column(self, name: str) -> list[Any]:
        """Field ``name`` of every post, in order."""
        if self._posts is not None:
            return [getattr(p, name) for p in self._posts]
        return _values(self._table_or_fail().column(name))

    def set_column(self, name: str, values: Sequence[Any]) -> None:
        """Set field ``name`` of every post (``values`` in order, one per post)."""
        if len(values) != len(self):
            msg = f"PostBatch.set_column({name!r}): {len(values)} values for {len(self)} posts"
            raise ValueError(msg)
        if self._posts is not None:
            for post, value in zip(self._posts, values, strict=True):
                setattr(post, name, value)
            return
        table = self._table_or_fail()
        index = BATCH_SCHEMA.get_field_index(name)
        if index < 0:
            msg = f"PostBatch.set_column: {name!r} is not a Post field"
            raise ValueError(msg)
        column = pa.array(values, type=BATCH_SCHEMA.field(index).type)
        self._table = table.set_column(table.schema.get_field_index(name), name, column)

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:
        return (_batch_of_table, (self.table(),))


def _batch_of_table(table: pa.Table) -> PostBatch:
    return PostBatch(table=table)
