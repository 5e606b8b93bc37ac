"""Overload without loss: the neural tier where capacity allows, the firehose tier for the rest, and a
background backfill that upgrades the rest later.

``TieredEnricher.enrich(posts)`` never drops or holds back a post past the latency budget (default
5 s, the alert latency): it plans how many of the batch's posts the neural tier can finish before the
oldest post's deadline (counted from its arrival, less ``reserve_s`` for what follows), from its
measured capacity (posts/s) and the work it already holds from
earlier batches (so under sustained overload the neural tier takes its capacity's share, no more),
runs the firehose sentiment on all the others first (fast), then the neural components on the
planned posts, oldest first, in small chunks — checking the clock between chunks and handing
whatever is left to the firehose tier when the next chunk would overrun. Every post records which
model labelled it (``sentiment_model``).

``TieredEnricher.upgrade(posts)`` runs the neural components on posts the firehose tier labelled
(``firehose_models`` names those models), with no budget: the backfill. Reading those posts from the
store and writing them back belongs above the store layer: ``murmur.runtime`` does it when the stream
is idle (``Runtime``, ``backfill``), with the very components this enricher already loaded.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from murmur.enrich.base import Component
from murmur.types import Post

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 5.0
CHUNK_SECONDS = 0.25
MIN_CHUNK = 4
DEFAULT_RESERVE_S = 1.5
"""Seconds of the budget ``B`` the neural tier never plans into. A post that arrives while a batch
is being enriched waits for that batch's neural share (at most ``safety · (B − R)`` plus the rest of
its work, ``w``), then its own batch's share, planned from its age: ``safety · (B − R − age)``. With
``safety`` 0.8 the worst case is about ``0.96 · (B − R) + 1.2 · w``; ``R`` = 1.5 s keeps it within
5 s while the rest of a batch's work (the firehose labels, terms, near-duplicates, the query
layer's hooks, the write) takes up to ~1.4 s. Measured end to end at 10x capacity
(``bench/overload.py``, 2 cores, one of them busy with other work): p99 5.8 s with no reserve, 5.3 s
with 1 s, 3.8 s with 1.5 s."""
FIREHOSE_SENTIMENT = "murmur.sentiment.lexical@1"


class Capacity(Protocol):
    """How many posts per second the neural tier gets through; learns from what it observes."""

    def rate(self) -> float: ...

    def observe(self, posts: int, seconds: float) -> None: ...


@dataclass(slots=True)
class FixedCapacity:
    """A capacity that does not learn (tests, or an operator's setting)."""

    posts_per_s: float

    def rate(self) -> float:
        return self.posts_per_s

    def observe(self, posts: int, seconds: float) -> None:
        return None


@dataclass(slots=True)
class MeasuredCapacity:
    """Exponentially weighted mean of observed throughput, starting from ``initial`` posts/s.

    The first observation is skipped: it carries the models' lazy loading, not their speed."""

    initial: float = 50.0
    alpha: float = 0.3
    _rate: float | None = None
    _warm: bool = False

    def rate(self) -> float:
        return self.initial if self._rate is None else self._rate

    def observe(self, posts: int, seconds: float) -> None:
        if posts <= 0 or seconds <= 0:
            return
        if not self._warm:
            self._warm = True
            return
        r = posts / seconds
        self._rate = r if self._rate is None else (1 - self.alpha) * self._rate + self.alpha * r


@dataclass(frozen=True, slots=True)
class TierReport:
    neural: int
    firehose: int
    seconds: float
    capacity: float


def utc_now() -> datetime:
    """The wall-clock time (a module-level function, not a lambda: the enricher must pickle)."""
    return datetime.now(UTC)


def _components_io(components: Sequence[Component]) -> tuple[frozenset[str], frozenset[str]]:
    requires: set[str] = set()
    assigns: set[str] = set()
    for c in components:
        requires |= set(c.requires) - assigns
        assigns |= set(c.assigns)
    return frozenset(requires), frozenset(assigns)


class TieredEnricher:
    """A component that runs ``neural`` components where capacity allows and ``firehose`` for the rest.

    ``neural`` is e.g. ``[E5Embed(), E5Sentiment()]``; ``firehose`` the lexical sentiment component.
    ``clock`` (monotonic seconds) and ``now`` (wall time) are injectable for tests.
    """

    name = "murmur.tiered.e5@1"

    def __init__(
        self,
        neural: Sequence[Component],
        firehose: Component,
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        capacity: Capacity | None = None,
        chunk: int = 64,
        safety: float = 0.8,
        reserve_s: float = DEFAULT_RESERVE_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.neural = list(neural)
        self.firehose = firehose
        self.budget_s = budget_s
        self.capacity: Capacity = capacity if capacity is not None else MeasuredCapacity()
        self.chunk = max(1, chunk)
        self.safety = safety
        self.reserve_s = max(0.0, reserve_s)
        self.clock = clock
        self.now = now
        n_req, n_asg = _components_io(self.neural)
        self.requires: frozenset[str] = n_req | (frozenset(firehose.requires) - n_asg)
        self.assigns: frozenset[str] = n_asg | frozenset(firehose.assigns)
        self.firehose_models: tuple[str, ...] = (firehose.name,)
        self.last: TierReport | None = None
        self._busy_until = float("-inf")

    def warm_up(self) -> None:
        """Load the models of both tiers now (``Pipeline.warm_up``): loaded inside the first batch,
        e5 would make those posts late by its load time (seconds; minutes for the first ONNX export)."""
        for comp in [*self.neural, self.firehose]:
            hook = getattr(comp, "warm_up", None)
            if callable(hook):
                hook()

    def process(self, posts: Sequence[Post]) -> None:
        self.enrich(posts)

    def enrich(self, posts: Sequence[Post], *, budget_s: float | None = None) -> TierReport:
        t0 = self.clock()
        budget = self.budget_s if budget_s is None else budget_s
        if not posts:
            return TierReport(0, 0, 0.0, self.capacity.rate())
        wall = self.now()
        order = sorted(range(len(posts)), key=lambda i: posts[i].ingested_at)  # oldest first
        oldest_age = max(0.0, (wall - posts[order[0]].ingested_at).total_seconds())
        slack = (budget - min(self.reserve_s, budget / 2) - oldest_age) * self.safety
        rate = max(self.capacity.rate(), 1e-9)
        # The neural tier is a resource of ``rate`` posts/s: work already given to it (by earlier
        # batches) occupies it until ``_busy_until``, so sustained neural work never exceeds capacity.
        free_at = max(t0, self._busy_until)
        usable = slack - (free_at - t0)
        planned = min(len(posts), max(0, math.floor(rate * usable))) if usable > 0 else 0
        self._busy_until = free_at + planned / rate
        neural = [posts[i] for i in order[:planned]]
        rest = [posts[i] for i in order[planned:]]
        if rest:
            self.firehose.process(rest)
        done = 0
        deadline = t0 + slack if slack > 0 else t0
        while done < len(neural):
            # A chunk takes at most ~CHUNK_SECONDS at the measured rate: the clock is read between
            # chunks, so a slow machine (or a rate measured before it slowed) overran the deadline
            # by up to a whole chunk (64 posts at 30 posts/s: 2 s).
            rate_now = max(self.capacity.rate(), 1e-9)
            size = max(MIN_CHUNK, min(self.chunk, int(rate_now * CHUNK_SECONDS)))
            part = neural[done : done + size]
            expected = len(part) / rate_now
            if self.clock() + expected > deadline:
                break
            c0 = self.clock()
            for comp in self.neural:
                comp.process(part)
            self.capacity.observe(len(part), self.clock() - c0)
            done += len(part)
        if done < len(neural):
            self.firehose.process(neural[done:])
        report = TierReport(done, len(posts) - done, self.clock() - t0, self.capacity.rate())
        if report.firehose:
            log.info(
                "tiered: %d posts by the neural tier, %d by the firehose tier (capacity %.0f posts/s)",
                report.neural,
                report.firehose,
                report.capacity,
            )
        self.last = report
        return report

    def upgrade_rate(self) -> float:
        """Posts/s the neural components are measured to manage (sizes the backfill's chunks)."""
        return self.capacity.rate()

    def upgrade(self, posts: Sequence[Post]) -> int:
        """Run the neural components on ``posts`` (all of them, no latency budget): the backfill of
        posts the firehose tier labelled. Returns how many were upgraded."""
        if not posts:
            return 0
        c0 = self.clock()
        for comp in self.neural:
            comp.process(posts)
        self.capacity.observe(len(posts), self.clock() - c0)
        return len(posts)
