"""The hand-off between the sources and the processing stage (``Handoff``): an in-process
bounded queue now (``QueueHandoff``), a durable message bus when murmur scales out."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime
from typing import Protocol

from murmur.types import RawEvent


class Handoff(Protocol):
    """The narrow seam between sources and processing (a queue now, a message bus later)."""

    async def put(self, event: RawEvent) -> None: ...

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]: ...

    def arrived(self) -> datetime | None:
        """When the oldest event of the last ``take`` arrived (None: it took nothing)."""
        ...


class QueueHandoff:
    """In-process bounded queue: a slow store slows the sources down instead of growing memory.

    A deque and two events rather than ``asyncio.Queue``: at firehose rates the queue's per-item
    bookkeeping (a future per waiting ``get``) cost more than normalizing the post."""

    def __init__(self, maxsize: int = 20_000) -> None:
        self._items: collections.deque[RawEvent] = collections.deque()
        self._arrivals: collections.deque[float] = collections.deque()
        """``time.time()`` at each item's ``put``: a post's age counts from here, not from when its
        batch was taken (it may wait here while the batch before it is enriched)."""
        self._taken_arrival: float | None = None
        self._maxsize = maxsize
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    async def put(self, event: RawEvent) -> None:
        while len(self._items) >= self._maxsize:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(event)
        self._arrivals.append(time.time())
        self._not_empty.set()

    async def take(self, max_items: int, wait_seconds: float) -> list[RawEvent]:
        """Up to ``max_items`` events: what is queued now, else what arrives within ``wait_seconds``
        (``wait_seconds <= 0``: only what is queued now)."""
        items: list[RawEvent] = []
        self._taken_arrival = None
        deadline = time.monotonic() + wait_seconds
        while True:
            while self._items and len(items) < max_items:
                items.append(self._items.popleft())
                arrival = self._arrivals.popleft()
                if self._taken_arrival is None:
                    self._taken_arrival = arrival
            if len(self._items) < self._maxsize:
                self._not_full.set()
            if len(items) >= max_items:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._not_empty.clear()
            try:
                await asyncio.wait_for(self._not_empty.wait(), remaining)
            except TimeoutError:
                break
        return items

    def empty(self) -> bool:
        return not self._items

    def arrived(self) -> datetime | None:
        """When the oldest event of the last ``take`` arrived (None: it took nothing)."""
        return None if self._taken_arrival is None else datetime.fromtimestamp(self._taken_arrival, UTC)
