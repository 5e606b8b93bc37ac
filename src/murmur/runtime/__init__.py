"""Wires sources → normalize → privacy gate → enrichment → store, and owns the checkpoints.

::

    source tasks ─RawEvent─▶ hand-off ─▶ batcher ─▶ normalize ─▶ gate ─▶ pipeline ─▶ store.write
    (one per source)         (bounded:   (size or   (PayloadError →                  (cursors in the
                              back-       interval)   quarantine with reason)          same transaction)
                              pressure)

The hand-off between the sources and the processing stage is one narrow interface (``Handoff``):
an in-process bounded queue now, a durable message bus when murmur scales out.

Delivery is at-least-once from source to store with idempotent writes: a source's cursor is
committed in the same transaction as the posts it produced, so after a crash the source resumes from
the last durable position and replays at most one batch, which upserts to the same rows. A worker
process that dies (killed, out of memory, a crash in native code) loses nothing either: the pool is
replaced and the batches it held are tried again, each alone; one a worker dies on twice is
quarantined with that reason and the stream goes on.

Backfill: when the pipeline holds an ``Upgrader`` (the neural tier's ``TieredEnricher``, which labels
with the firehose model what it cannot finish within the alert latency), the runtime upgrades those
posts once the stream has been idle for ``backfill_idle_seconds`` (hand-off empty, nothing in flight):
it reads a chunk of firehose-labelled posts, oldest first, has the components the pipeline already
loaded upgrade them (in the runtime's processing thread, or in a worker process when the upgrader
runs there), and writes them through the same in-order writer as the batches. One chunk at a time,
and only while no input waits, so new posts are never held back by more than one chunk.
"""

from murmur.runtime.backfill import Upgrader, backfill, find_upgrader
from murmur.runtime.handoff import Handoff, QueueHandoff
from murmur.runtime.loop import Runtime
from murmur.runtime.processor import BatchHook, PreparedHook, Processed, Processor, Writer, write_processed
from murmur.runtime.stats import RuntimeStats, SourceCounters
from murmur.runtime.workers import WorkerSetup

__all__ = [
    "BatchHook",
    "Handoff",
    "PreparedHook",
    "Processed",
    "Processor",
    "QueueHandoff",
    "Runtime",
    "RuntimeStats",
    "SourceCounters",
    "Upgrader",
    "WorkerSetup",
    "Writer",
    "backfill",
    "find_upgrader",
    "write_processed",
]
