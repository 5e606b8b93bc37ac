"""Batches from worker processes arrive as Arrow columns (``murmur.batch.PostBatch``): what the
workers added, the ordered stage's clusters, the embeddings and the hooks' view of the posts are
all there, as they are when everything runs in one process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from murmur.enrich.base import Pipeline
from murmur.enrich.neardup import NearDupClusters, SimHashSignature
from murmur.privacy import PrivacyGate
from murmur.runtime import Processor, Runtime, WorkerSetup
from murmur.store import Store
from murmur.testing import ListSource, jetstream_commit
from murmur.types import Post

NOW = datetime(2026, 12, 1, tzinfo=UTC)  # ingested_at differs between the two runs


class Vector:
    """A stateless stand-in for an embedder: a vector the test can check."""

    name = "tests.vector@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"embedding", "embedding_model"})

    def process(self, posts: Sequence[Post]) -> None:
        for post in posts:
            post.embedding = [float(len(post.text)), 0.5]
            post.embedding_model = self.name


def pipeline() -> Pipeline:
    return Pipeline([Vector(), SimHashSignature(), NearDupClusters()])


def run(tmp: Path, workers: int) -> tuple[Store, list[Post]]:
    texts = [f"flood warning number {i % 50} for the river valley tonight" for i in range(600)]
    payloads = [jetstream_commit(i, text=t, did=f"did:plc:a{i % 40}") for i, t in enumerate(texts)]
    seen: list[Post] = []

    def hook(posts: Sequence[Post]) -> None:  # a BatchHook that reads the posts and writes nothing
        seen.extend(posts)

    store = Store.open(tmp / f"db{workers}.duckdb")
    setup = WorkerSetup(workers=workers, public_accounts=(), period_days=30, pipeline_factory=pipeline)
    runtime = Runtime(
        store,
        [ListSource("bsky", "jetstream", payloads)],
        Processor(PrivacyGate(key_file=tmp / "keys"), pipeline()),
        batch_size=100,
        workers=setup,
        hooks=[hook],
    )
    stats = asyncio.run(asyncio.wait_for(runtime.run(), 120))
    assert stats.posts == 600
    return store, seen


def rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return conn.execute(sql).fetchall()


def test_worker_batches_store_the_same_as_one_process(tmp_path: Path) -> None:
    alone, seen_alone = run(tmp_path, workers=1)
    pooled, seen_pooled = run(tmp_path, workers=2)
    posts_sql = (
        "SELECT post_id, text, simhash, dup_cluster, embedding_model, created_at, ingested_at IS NOT NULL "
        "FROM posts ORDER BY post_id"
    )
    assert rows(pooled.conn, posts_sql) == rows(alone.conn, posts_sql)
    # 50 distinct texts, 12 copies each: the copies share a cluster across batches from both workers
    clusters = rows(pooled.conn, "SELECT count(DISTINCT dup_cluster) FROM posts")
    assert clusters == rows(alone.conn, "SELECT count(DISTINCT dup_cluster) FROM posts")
    assert 0 < int(str(clusters[0][0])) <= 50
    emb_sql = "SELECT post_id, embedding FROM embeddings ORDER BY post_id"
    assert len(rows(pooled.conn, emb_sql)) == 600
    assert rows(pooled.conn, emb_sql) == rows(alone.conn, emb_sql)
    # the hooks saw whole Post objects, clusters included, in both set-ups
    assert len(seen_pooled) == 600
    assert all(p.dup_cluster and p.embedding_model == Vector.name for p in seen_pooled)
    by_id = {p.post_id: p for p in seen_alone}
    assert all(replace(p, ingested_at=NOW) == replace(by_id[p.post_id], ingested_at=NOW) for p in seen_pooled)
