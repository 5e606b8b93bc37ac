"""Raw events to storable rows (``Processor``), and the write of a processed batch
(``write_processed``): the middle of the runtime's flow, in its own process or in a worker's."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast, runtime_checkable

import duckdb
import pyarrow as pa

from murmur.batch import PostBatch
from murmur.enrich.base import ComponentTiming, Pipeline
from murmur.errors import PayloadError
from murmur.privacy import PrivacyGate
from murmur.sources.normalize import normalize
from murmur.store import QuarantineRecord, Store
from murmur.types import Deletion, Draft, Post, RawEvent

log = logging.getLogger(__name__)

Writer = Callable[[duckdb.DuckDBPyConnection], None]
"""Run by the store inside a batch's write transaction."""
BatchHook = Callable[[Sequence[Post]], Writer | None]
"""Called with each stored batch's posts; may return a writer run inside the batch's transaction
(e.g. the query layer's token index and live monitor matches)."""
Preparer = Callable[[Sequence[Post]], pa.Table]


@runtime_checkable
class PreparedHook(Protocol):
    """A ``BatchHook`` whose per-post work can run where the batch is enriched (a worker process),
    not in the runtime's own process, the one writer: there ``prepare`` (picklable: a module-level
    function) turns the enriched posts into a table, and here ``write_prepared`` turns that table
    into the writer. ``reads``: the ``Post`` fields ``prepare`` reads; the runtime prepares in its
    workers only when its ordered stage (run here, after the workers) assigns none of them."""

    reads: frozenset[str]

    @property
    def prepare(self) -> Preparer: ...

    def __call__(self, posts: Sequence[Post]) -> Writer | None: ...

    def write_prepared(self, prepared: pa.Table) -> Writer | None: ...


@dataclass(slots=True)
class Processed:
    batch: PostBatch
    """The batch's posts; from a worker process they arrive as columns (``PostBatch``)."""
    deletions: list[Deletion]
    quarantine: list[QuarantineRecord]
    cursors: dict[str, str]
    normalized: dict[str, int] = field(default_factory=dict)
    """Events per source that normalized (the rest of the batch's events were quarantined)."""
    quarantined: dict[str, int] = field(default_factory=dict)
    posted: dict[str, int] = field(default_factory=dict)
    """Posts per source that passed the privacy gate (what the source's ``posts`` counter adds)."""
    deleted: dict[str, int] = field(default_factory=dict)
    """Deletions per source."""
    timings: dict[str, ComponentTiming] = field(default_factory=dict)
    backfilled: bool = False
    """A backfill chunk: stored posts upgraded, not new input (no ordered stage, no batch counted)."""
    prepared: list[pa.Table] = field(default_factory=list)
    """What the ``Processor``'s ``preparers`` made of the enriched batch, one table each, in order."""


class Processor:
    """The middle of the flow: raw events to storable rows. Pure but for the gate's secrets, so it
    can run in worker processes (``WorkerSetup``) as well as in the runtime's own."""

    def __init__(
        self, gate: PrivacyGate, pipeline: Pipeline | None = None, preparers: Sequence[Preparer] = ()
    ) -> None:
        self.gate = gate
        self.pipeline = pipeline
        self.preparers = tuple(preparers)
        """``PreparedHook.prepare`` of the hooks whose work runs here (in a worker process)."""

    def process(self, events: Sequence[RawEvent], *, now: datetime | None = None) -> Processed:
        now = now or datetime.now(UTC)
        drafts: list[Draft] = []
        origins: list[RawEvent] = []  # the event each draft came from
        posts: list[Post] = []
        posted: list[RawEvent] = []  # the event each post came from
        out = Processed(PostBatch(posts), [], [], {})
        for ev in events:
            out.cursors[ev.source_id] = ev.position
            try:
                items = normalize(ev.format, ev.payload)
            except PayloadError as exc:
                out.quarantine.append(quarantine_record(ev, exc.reason, exc.field))
                out.quarantined[ev.source_id] = out.quarantined.get(ev.source_id, 0) + 1
                continue
            except Exception as exc:  # a normalizer bug must not stop the stream
                log.exception("normalizer %s failed on %s at %s", ev.format, ev.source_id, ev.position)
                reason = f"internal normalizer error: {type(exc).__name__}: {exc}"
                out.quarantine.append(quarantine_record(ev, reason, None))
                out.quarantined[ev.source_id] = out.quarantined.get(ev.source_id, 0) + 1
                continue
            for item in items:
                if isinstance(item, Deletion):
                    out.deletions.append(self.gate.delete(item, now=now))
                    out.deleted[ev.source_id] = out.deleted.get(ev.source_id, 0) + 1
                else:
                    drafts.append(item)
                    origins.append(ev)
            out.normalized[ev.source_id] = out.normalized.get(ev.source_id, 0) + 1
        for draft, origin in zip(drafts, origins, strict=True):
            try:
                posts.append(self.gate.apply(draft, now=now))
                posted.append(origin)
                out.posted[origin.source_id] = out.posted.get(origin.source_id, 0) + 1
            except Exception as exc:  # same rule: quarantine, never stop
                log.exception("privacy gate failed on a %s post", draft.platform)
                out.quarantine.append(
                    QuarantineRecord.of(
                        source_id=draft.platform,
                        format="gate",
                        position="(privacy gate)",
                        reason=f"privacy gate error: {type(exc).__name__}: {exc}",
                        field=None,
                        payload=b"",
                    )
                )
        if self.pipeline is not None:
            try:
                self.pipeline.process(posts)
            except Exception as exc:
                out.batch = PostBatch(self._enrich_alone(posts, posted, out, exc))
            out.timings = dict(self.pipeline.timings)
            self.pipeline.timings.clear()
        if self.preparers:
            enriched = out.batch.posts
            for prepare in self.preparers:
                start = time.perf_counter()
                out.prepared.append(prepare(enriched))
                name = f"hook {prepare.__module__}.{prepare.__qualname__}"  # in the per-component timings
                out.timings[name] = ComponentTiming(len(enriched), time.perf_counter() - start)
        return out

    def _enrich_alone(
        self, posts: list[Post], origins: list[RawEvent], out: Processed, error: Exception
    ) -> list[Post]:
        """The batch failed in enrichment: each post is enriched alone, and one that fails alone is
        quarantined with the error (its event's source and position), so one odd post cannot stop
        the stream (a restart would replay it and fail again). A failure that is no post's own,
        where the warm-up post fails too or every post fails, is raised: a model that cannot run
        must stop the service with its error, not quarantine the whole stream."""
        assert self.pipeline is not None
        log.error("enrichment failed on a batch of %d posts (%s): trying them one by one", len(posts), error)
        try:
            self.pipeline.split()[0].process([warmup_post()])
        except Exception:
            raise error from None
        kept: list[Post] = []
        failed: list[tuple[RawEvent, str]] = []
        for post, origin in zip(posts, origins, strict=True):
            try:
                self.pipeline.process([post])
            except Exception as exc:
                failed.append((origin, f"enrichment error: {type(exc).__name__}: {exc}"))
            else:
                kept.append(post)
        if not kept and len(posts) > 1:
            raise error
        for origin, reason in failed:
            log.error("post from %s at %s quarantined: %s", origin.source_id, origin.position, reason)
            out.quarantine.append(quarantine_record(origin, reason[:500], None))
            out.quarantined[origin.source_id] = out.quarantined.get(origin.source_id, 0) + 1
            out.posted[origin.source_id] -= 1
        return kept


def quarantine_record(ev: RawEvent, reason: str, field_name: str | None) -> QuarantineRecord:
    return QuarantineRecord.of(
        source_id=ev.source_id,
        format=ev.format,
        position=ev.position,
        reason=reason,
        field=field_name,
        payload=ev.payload,
    )


def write_processed(
    store: Store, out: Processed, hooks: Sequence[BatchHook] = (), prepared_by: Sequence[PreparedHook] = ()
) -> None:
    """Store a processed batch in one transaction, with what ``hooks`` write for it. ``prepared_by``:
    the hooks whose tables ``out.prepared`` holds, in order (a worker prepared them); those write
    from their table, the others are called with the batch's posts."""
    batch = out.batch
    # The batch as it is stored, taken before the hooks ask for ``Post`` objects (which a batch from
    # a worker builds from its columns: only then, and only once).
    stored = PostBatch(table=batch.table())
    tables: dict[int, pa.Table] = {}
    if out.prepared:
        tables = {id(hook): table for hook, table in zip(prepared_by, out.prepared, strict=True)}
    extras: list[Writer] = []
    for hook in hooks:
        table = tables.get(id(hook))
        writer = hook(batch.posts) if table is None else cast(PreparedHook, hook).write_prepared(table)
        if writer is not None:
            extras.append(writer)
    store.write(
        posts=stored,
        deletions=out.deletions,
        quarantine=out.quarantine,
        cursors=out.cursors,
        embeddings=_embeddings(stored),
        extras=extras,
    )


def _embeddings(batch: PostBatch) -> list[tuple[str, str, list[float]]]:
    vectors = batch.column("embedding")
    if all(v is None for v in vectors):
        return []
    keys = zip(batch.column("platform"), batch.column("post_id"), strict=True)
    return [(pl, pid, list(v)) for (pl, pid), v in zip(keys, vectors, strict=True) if v is not None]


def warmup_post() -> Post:
    """A post every model can read: what loads lazily loaded models before the first batch."""
    now = datetime.now(UTC)
    return Post(
        platform="file",
        post_id="warmup",
        created_at=now,
        ingested_at=now,
        author_key="warmup",
        text="Warming up the models: bonjour, guten Tag, こんにちは, مرحبا #warmup",
    )
