"""A worker process collects garbage between batches (``murmur.runtime.workers._collect_between_batches``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a fresh interpreter: the policy switches off automatic collection for the whole process.
PROBE = textwrap.dedent(
    """
    import gc, weakref
    from murmur.runtime import workers as runtime

    class Node:
        pass

    def cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    runtime._freeze_loaded_objects()
    assert not gc.isenabled(), "automatic collection is still on"
    assert gc.get_freeze_count() > 0, "the loaded objects were not frozen"

    young = cycle()
    for _ in range(10_000):  # far past the automatic threshold (700 allocations)
        Node()
    assert young() is not None, "collected during the batch"
    runtime._collect_between_batches()
    assert young() is None, "a young cycle outlived the next batch"

    # a cycle that lived through a young collection (a cache entry dropped later) reaches the oldest
    # generation; the periodic full collection frees it
    holder = [Node()]
    holder[0].self = holder[0]
    old = weakref.ref(holder[0])
    runtime._collect_between_batches()
    runtime._collect_between_batches()
    holder.clear()
    for _ in range(runtime.FULL_COLLECTION_EVERY):
        runtime._collect_between_batches()
    assert old() is None, "an old cycle outlived the full collection"
    print("ok")
    """
)


def test_worker_collects_between_batches_not_during_them() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
