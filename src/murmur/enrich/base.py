"""Enrichment components and the pipeline that runs them in order.

A component declares what it reads (``requires``) and what it adds (``assigns``), as ``Post``
field names. ``Pipeline`` checks the order before anything runs: a component that needs a field
no earlier component (nor the privacy gate) provides is rejected with a message naming both.
Components work on batches and change posts in place. One may also offer ``process_batch(batch)``,
the same work on a ``PostBatch``'s columns (``column``/``set_column``): the runtime's ordered stage
then needs no ``Post`` objects for it (a batch from a worker process arrives as columns).

A component that keeps state across batches (``stateful = True``, e.g. the near-duplicate index,
which must see every post to cluster them) runs in the runtime's single ordered stage; stateless
ones may run in several worker processes at once (``Pipeline.split``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

from murmur.batch import PostBatch
from murmur.errors import PipelineError
from murmur.registry import Registry
from murmur.types import Post

ENRICHMENT_FIELDS: frozenset[str] = frozenset(
    {
        "lang",
        "lang_conf",
        "sentiment",
        "sentiment_score",
        "sentiment_model",
        "terms",
        "simhash",
        "minhash",
        "dup_cluster",
        "embedding",
        "embedding_model",
    }
)
GATE_FIELDS: frozenset[str] = frozenset(f.name for f in fields(Post)) - ENRICHMENT_FIELDS


class Component(Protocol):
    """One enrichment step. ``name`` is a registry id with version, e.g. ``murmur.lang.cld2@1``."""

    name: str
    requires: frozenset[str]
    assigns: frozenset[str]

    def process(self, posts: Sequence[Post]) -> None:
        """Enrich a batch in place. Must give the same result as calling it post by post."""
        ...


COMPONENTS: Registry[type[Component]] = Registry("enrichment component")


def is_stateful(component: Component) -> bool:
    """Whether a component keeps state across batches (then it may not be run in parallel copies)."""
    return bool(getattr(component, "stateful", False))


@dataclass(slots=True)
class ComponentTiming:
    """Posts a component processed and the wall-clock seconds it took (a component that runs threads
    of its own, like e5 in ONNX Runtime, uses more CPU time than this)."""

    posts: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class Pipeline:
    components: list[Component]
    timings: dict[str, ComponentTiming] = field(default_factory=dict)
    given: frozenset[str] = frozenset()
    """Enrichment fields already filled when this pipeline runs (the ordered part of a ``split``)."""

    def __post_init__(self) -> None:
        available = set(GATE_FIELDS) | self.given
        provider: dict[str, str] = {}
        all_assigned = {f: c.name for c in self.components for f in c.assigns}
        for comp in self.components:
            missing = sorted(comp.requires - available)
            if missing:
                later = {m: all_assigned[m] for m in missing if m in all_assigned}
                if later:
                    detail = "; ".join(f"{m!r} is added by {n}, which runs later" for m, n in later.items())
                    msg = f"pipeline order: {comp.name} needs {detail}. Place it after them."
                else:
                    msg = f"pipeline: {comp.name} needs {missing}, which no component adds"
                raise PipelineError(msg)
            for f in comp.assigns:
                if f not in ENRICHMENT_FIELDS:
                    msg = f"pipeline: {comp.name} assigns {f!r}, which is not an enrichment field of Post"
                    raise PipelineError(msg)
                provider[f] = comp.name
            available |= comp.assigns

    def split(self) -> tuple[Pipeline, Pipeline]:
        """(stateless prefix, the rest): the prefix may run in parallel workers, the rest must see
        every post in order. Components after the first stateful one stay in the ordered part."""
        for i, comp in enumerate(self.components):
            if is_stateful(comp):
                head = self.components[:i]
                done = frozenset(f for c in head for f in c.assigns)
                return Pipeline(head), Pipeline(self.components[i:], given=self.given | done)
        return Pipeline(list(self.components)), Pipeline([])

    def merge_timings(self, other: dict[str, ComponentTiming]) -> None:
        for name, t in other.items():
            mine = self.timings.setdefault(name, ComponentTiming())
            mine.posts += t.posts
            mine.seconds += t.seconds

    def warm_up(self) -> None:
        """Call every component's optional ``warm_up()``: load now what it loads lazily, so that the
        first batch does not pay for it (and the alert latency does not include it)."""
        for comp in self.components:
            hook = getattr(comp, "warm_up", None)
            if callable(hook):
                hook()

    def process(self, posts: Sequence[Post]) -> None:
        self.process_batch(PostBatch(list(posts)))

    def process_batch(self, batch: PostBatch) -> None:
        """``process`` on a ``PostBatch``: a component with a ``process_batch`` method of its own
        works on the batch's columns; the others get its ``Post`` objects (built once, if the batch
        came as columns)."""
        if not len(batch):
            return
        for comp in self.components:
            t0 = time.perf_counter()
            by_columns = getattr(comp, "process_batch", None)
            if callable(by_columns):
                by_columns(batch)
            else:
                comp.process(batch.posts)
            timing = self.timings.setdefault(comp.name, ComponentTiming())
            timing.posts += len(batch)
            timing.seconds += time.perf_counter() - t0
