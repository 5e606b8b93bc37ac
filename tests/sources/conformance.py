"""One conformance suite every source runs through (like River's ``test_estimators.py``).

A ``SourceCase`` describes a source and how to serve it locally; the checks are the same for all:

* a run from no cursor yields every expected event exactly once, in order, and counts them in stats;
* positions never move backwards and each is a valid cursor;
* resuming from the position of any event gives exactly the rest: no gap, no duplicate (a source that
  rewinds on purpose, like Jetstream, may repeat events inside its declared replay window only);
* bad options give a ``ConfigError`` naming ``sources.<id>.<key>``;
* the source type is registered and built through ``SOURCES``, like a plugin's would be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest

from murmur.config import SourceConfig
from murmur.errors import ConfigError
from murmur.sources import SOURCES, Source, register_builtins
from murmur.types import RawEvent

SOURCE_ID = "conf"


@dataclass
class SourceCase:
    name: str
    type: str
    serve: Callable[[int], AbstractContextManager[dict[str, Any]]]
    """``serve(already)`` starts what the source reads from, as if the first ``already`` expected
    events had happened before, and yields the source options."""
    expected: Callable[[], list[str]]
    """Identities of all events in delivery order."""
    identity: Callable[[RawEvent], str]
    order_key: Callable[[str], tuple[Any, ...]]
    """Maps a position to something that must never decrease."""
    finite: bool
    """The stream ends by itself (files, polls bounded by ``max_polls``)."""
    bad_options: Sequence[tuple[dict[str, Any], str]]
    """Option dicts that must be refused, with the key the error must name."""
    replay_allowed: Callable[[str, str], bool] = lambda cursor, identity: False
    """May ``identity`` be delivered again after resuming from ``cursor``?"""
    quiet: float = 0.4
    """Live streams: seconds without events after which the run counts as caught up."""
    timeout: float = 30.0
    resume_points: Callable[[int], list[int]] = field(default=lambda n: sorted({0, n // 3, n - 1}))


def build(case: SourceCase, options: dict[str, Any]) -> Source:
    register_builtins()
    return SOURCES.get(case.type)(SourceConfig(id=SOURCE_ID, type=case.type, options=options))


async def collect(
    source: Source,
    cursor: str | None,
    *,
    wanted: set[str] | None,
    identity: Callable[[RawEvent], str],
    quiet: float,
    limit_s: float,
) -> list[RawEvent]:
    """Run ``source.events(cursor)`` until it ends, or (live streams) until every identity in
    ``wanted`` arrived and then ``quiet`` seconds pass without another event."""
    queue: asyncio.Queue[RawEvent | Exception | None] = asyncio.Queue()

    async def pump() -> None:
        stream = source.events(cursor)
        try:
            async for event in stream:
                await queue.put(event)
        except Exception as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)
        else:
            await queue.put(None)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    task = asyncio.create_task(pump())
    got: list[RawEvent] = []
    missing = set(wanted) if wanted is not None else None
    deadline = asyncio.get_running_loop().time() + limit_s
    try:
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out after {limit_s} s; {len(got)} events, missing {missing}")
            wait = min(quiet, left) if missing is not None and not missing else left
            try:
                event = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if missing is not None and not missing:
                    return got
                continue
            if isinstance(event, Exception):
                raise event
            if event is None:
                return got
            got.append(event)
            if missing is not None:
                missing.discard(identity(event))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(
    case: SourceCase, cursor: str | None, already: int, wanted: set[str] | None
) -> tuple[Source, list[RawEvent]]:
    with case.serve(already) as options:
        source = build(case, options)
        events = asyncio.run(
            collect(
                source,
                cursor,
                wanted=None if case.finite else wanted,
                identity=case.identity,
                quiet=case.quiet,
                limit_s=case.timeout,
            )
        )
    return source, events


# --- the checks ---------------------------------------------------------------------------------------


def check_registered(case: SourceCase) -> None:
    register_builtins()
    assert case.type in SOURCES.names()
    register_builtins()  # idempotent


def check_full_run(case: SourceCase) -> list[RawEvent]:
    expected = case.expected()
    assert len(expected) == len(set(expected)) >= 3, "a case needs at least 3 distinct events"
    source, events = run(case, None, 0, set(expected))
    got = [case.identity(e) for e in events]
    assert got == expected, f"{case.name}: {len(got)} events, expected {len(expected)}"
    assert source.stats.events == len(events)
    assert all(e.source_id == SOURCE_ID and e.position for e in events)
    keys = [case.order_key(e.position) for e in events]
    assert keys == sorted(keys), f"{case.name}: positions moved backwards"
    return events


def check_resume(case: SourceCase, full: list[RawEvent]) -> None:
    expected = case.expected()
    for k in case.resume_points(len(full)):
        cursor = full[k].position
        rest = expected[k + 1 :]
        _, events = run(case, cursor, k + 1, set(rest))
        got = [case.identity(e) for e in events]
        wanted, counts = set(rest), Counter(got)
        replays = [g for g in got if g not in wanted or counts[g] > 1]
        assert all(case.replay_allowed(cursor, g) for g in replays), (
            f"{case.name}: resuming after event {k} repeated events outside the replay window: {replays[:5]}"
        )
        fresh = list(dict.fromkeys(g for g in got if g in wanted))
        assert fresh == rest, f"{case.name}: resuming after event {k}: gap or reordering"
        keys = [case.order_key(e.position) for e in events]
        assert keys == sorted(keys)
        assert not keys or keys[0] >= case.order_key(cursor)


def check_bad_options(case: SourceCase) -> None:
    register_builtins()
    factory = SOURCES.get(case.type)
    for options, key in case.bad_options:
        with pytest.raises(ConfigError) as info:
            factory(SourceConfig(id=SOURCE_ID, type=case.type, options=options))
        assert f"sources.{SOURCE_ID}.{key}" in str(info.value), str(info.value)
