"""Garbage collection between batches, not every 700 allocations: in the worker processes and in the
runtime's own process while it runs.

Python's cycle collector runs after every 700 new container objects. A batch of 2,000 posts makes
hundreds of thousands of them and keeps them alive to its end, so automatic collection ran many
times a batch, each time scanning the whole batch, and in its full collections every long-lived
object (loaded models, the query layer's caches) again:

* a firehose worker: ~20 collections a batch, 11.7-14.3 µs a post, 6-8 % of its time;
* the runtime's own process with the query layer's hooks (``murmur run``): ~1,200 collections over
  51,842 posts, 0.96-1.21 s, 18-23 µs a post on its serial path (9 full ones took 0.51-0.60 s: the
  query layer's token caches are long-lived containers); now 4.5-4.9 µs.

So once what stays loaded is loaded, its objects are moved out of the collector's sight
(``gc.freeze``), automatic collection is switched off, and ``collect_between_batches`` collects
instead: the young generations before each batch (the previous batch is gone by then, apart from
its few cyclic leftovers, which this frees), a full collection every ``FULL_COLLECTION_EVERY``-th.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FULL_COLLECTION_EVERY = 100
"""Batches between full garbage collections (``collect_between_batches``)."""

_batches_done = 0


def freeze_loaded_objects() -> None:
    """Hide what exists now from the collector and switch automatic collection off (module doc)."""
    gc.collect()
    gc.freeze()
    gc.disable()


def thaw() -> None:
    """Hand the frozen objects back and collect automatically again (at a worker's exit: frozen, they
    would outlive the interpreter's last collection, and DuckDB's bindings would report them as
    leaked)."""
    gc.unfreeze()
    gc.enable()
    gc.collect()


def collect_between_batches() -> None:
    """Before each batch: the young generations; every ``FULL_COLLECTION_EVERY``-th batch, all of
    them, for cycles that outlived a young collection."""
    global _batches_done
    _batches_done += 1
    gc.collect(2 if _batches_done % FULL_COLLECTION_EVERY == 0 else 1)


@contextmanager
def between_batches_only() -> Iterator[None]:
    """``freeze_loaded_objects`` for a block (``Runtime.run``); after it the frozen objects are the
    collector's again, the last batch's leftovers are collected, and automatic collection is as it
    was."""
    was_enabled = gc.isenabled()
    freeze_loaded_objects()
    try:
        yield
    finally:
        thaw()
        if not was_enabled:
            gc.disable()
