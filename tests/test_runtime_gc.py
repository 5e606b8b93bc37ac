"""A worker process collects garbage between batches (``murmur.runtime.collect``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a fresh interpreter: the policy switches off automatic collection for the whole process.
PROBE = textwrap.dedent(
    """
    import gc, weakref
    from murmur.runtime import collect as runtime

    class Node:
        pass

    def cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    runtime.freeze_loaded_objects()
    assert not gc.isenabled(), "automatic collection is still on"
    assert gc.get_freeze_count() > 0, "the loaded objects were not frozen"

    young = cycle()
    for _ in range(10_000):  # far past the automatic threshold (700 allocations)
        Node()
    assert young() is not None, "collected during the batch"
    runtime.collect_between_batches()
    assert young() is None, "a young cycle outlived the next batch"

    # a cycle that lived through a young collection (a cache entry dropped later) reaches the oldest
    # generation; the periodic full collection frees it
    holder = [Node()]
    holder[0].self = holder[0]
    old = weakref.ref(holder[0])
    runtime.collect_between_batches()
    runtime.collect_between_batches()
    holder.clear()
    for _ in range(runtime.FULL_COLLECTION_EVERY):
        runtime.collect_between_batches()
    assert old() is None, "an old cycle outlived the full collection"
    print("ok")
    """
)


def _passes(probe: str) -> None:
    """Run ``probe`` in a fresh interpreter (the policy switches off automatic collection for the
    whole process) and expect its ``ok``."""
    command = [sys.executable, "-c", probe]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_worker_collects_between_batches_not_during_them() -> None:
    _passes(PROBE)


# The runtime's own process: automatic collection is off while it runs, a batch's cyclic garbage is
# freed before the next batch (or after IDLE_COLLECT_SECONDS without one), and on return automatic
# collection is back as it was.
RUNTIME_PROBE = textwrap.dedent(
    """
    import asyncio, gc, sys, tempfile, weakref
    from pathlib import Path
    from murmur.privacy import PrivacyGate
    from murmur.runtime import Processor, Runtime, loop
    from murmur.store import Store
    from murmur.testing import ListSource, jetstream_commit

    class Node:
        pass

    seen = []  # per batch: automatic collection on?, and a weak reference to a cycle made then

    def hook(posts):
        a, b = Node(), Node()
        a.other, b.other = b, a
        seen.append((gc.isenabled(), weakref.ref(a)))
        return None

    idle_freed = []  # after a pause in the stream: was the last batch's cycle freed by then?

    class PausingSource(ListSource):
        async def events(self, cursor):
            async for event in super().events(cursor):
                if event.position == "21":  # after two batches: the runtime idles for a while
                    await asyncio.sleep(0.5)
                    idle_freed.append(seen[-1][1]() is None)
                yield event

    loop.IDLE_COLLECT_SECONDS = 0.05
    payloads = [jetstream_commit(i, text=f"post {i}") for i in range(40)]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "m.duckdb") as store:
        runtime = Runtime(
            store, [PausingSource("bsky", "jetstream", payloads)],
            Processor(PrivacyGate(key_file=Path(tmp) / "keys")),
            batch_size=10, flush_seconds=0.01, hooks=[hook], backfill_idle_seconds=None,
        )
        assert gc.isenabled()
        asyncio.run(runtime.run())
        assert gc.isenabled(), "automatic collection was not switched back on"
        assert gc.get_freeze_count() == 0, "objects were left frozen"
    assert len(seen) == 4, seen
    assert idle_freed == [True], "an idle runtime did not collect"
    assert not any(on for on, _ in seen), "automatic collection ran during the batches"
    alive = [i for i, (_, ref) in enumerate(seen) if ref() is not None]
    assert alive == [], f"cycles of batches {alive} outlived the run's collections"
    print("ok")
    """
)


def test_the_runtime_collects_between_batches_and_restores_automatic_collection() -> None:
    _passes(RUNTIME_PROBE)
