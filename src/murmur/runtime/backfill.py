"""Backfill: posts the firehose model labelled under overload, read back oldest first and
upgraded by the pipeline's ``Upgrader`` (the runtime does it when the stream is idle; ``backfill``
does it in the calling thread)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from murmur.batch import POST_COLUMNS, posts_from_table
from murmur.enrich.base import Pipeline
from murmur.runtime.processor import BatchHook
from murmur.store import Store
from murmur.store.schema import fetch_one
from murmur.types import Post


class Upgrader(Protocol):
    """A component that redoes, with its better models, what a cheaper model labelled under overload
    (``murmur.enrich.neural.tiered.TieredEnricher``). Posts whose ``sentiment_model`` is one of
    ``firehose_models`` are the ones to upgrade."""

    firehose_models: tuple[str, ...]

    def upgrade(self, posts: Sequence[Post]) -> int: ...

    def upgrade_rate(self) -> float: ...


BACKFILL_CHUNK_SECONDS = 1.0
"""How long one backfill chunk should take: new input waits for at most one chunk."""

BackfillKey = tuple[datetime, str, str]
"""Where a backfill pass stands: (ingested_at, platform, post_id) of the last post read."""


def find_upgrader(pipeline: Pipeline | None) -> Upgrader | None:
    """The pipeline's ``Upgrader`` component, if it has one (the firehose tier has none)."""
    for comp in pipeline.components if pipeline is not None else ():
        if callable(getattr(comp, "upgrade", None)) and getattr(comp, "firehose_models", None):
            return cast(Upgrader, comp)
    return None


def read_firehose_labelled(
    store: Store, models: Sequence[str], limit: int, *, after: BackfillKey | None = None
) -> list[Post]:
    """Up to ``limit`` stored posts labelled by one of ``models``, oldest ingested first (after
    ``after``, when given)."""
    if limit <= 0 or not models:
        return []
    params: list[Any] = list(models)
    marks = ", ".join("?" for _ in models)
    sql = f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE sentiment_model IN ({marks})"
    if after is not None:
        sql += " AND (ingested_at, platform, post_id) > (?, ?, ?)"
        params.extend(after)
    sql += " ORDER BY ingested_at, platform, post_id LIMIT ?"
    params.append(limit)
    return posts_from_table(store.conn.sql(sql, params=params).to_arrow_table())


def count_firehose_labelled(store: Store, models: Sequence[str]) -> int:
    if not models:
        return 0
    marks = ", ".join("?" for _ in models)
    found = fetch_one(store.conn, f"SELECT count(*) FROM posts WHERE sentiment_model IN ({marks})", models)
    return int(found[0]) if found else 0


def write_backfilled(store: Store, posts: Sequence[Post], hooks: Sequence[BatchHook] = ()) -> None:
    """Upsert upgraded posts, their embeddings and the hooks' rows (the search index keys on the
    sentiment) in one transaction. A post deleted since it was read stays deleted."""
    if not posts:
        return
    embeddings = [(p.platform, p.post_id, list(p.embedding)) for p in posts if p.embedding is not None]
    extras = [w for w in (hook(posts) for hook in hooks) if w is not None]
    store.write(posts=posts, embeddings=embeddings, extras=extras)


def backfill(store: Store, upgrader: Upgrader, limit: int, hooks: Sequence[BatchHook] = ()) -> int:
    """Upgrade up to ``limit`` firehose-labelled posts, oldest first, in the calling thread (the one
    writer's); returns how many (0 when none is left). ``Runtime`` does the same when idle."""
    posts = read_firehose_labelled(store, upgrader.firehose_models, limit)
    if not posts:
        return 0
    upgrader.upgrade(posts)
    write_backfilled(store, posts, hooks)
    return len(posts)
