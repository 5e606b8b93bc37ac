"""File source on the real payload files: format detection, row positions, resuming a killed import."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from murmur.config import SourceConfig
from murmur.errors import ConfigError, SourceError
from murmur.sources.files import FileSource, file_source
from murmur.sources.normalize import normalize
from murmur.testing import has_shared_data, shared_data
from murmur.types import Draft, RawEvent

pytestmark = pytest.mark.skipif(not has_shared_data(), reason="needs ../shared/data (real recorded payloads)")


def source(path: Path, **options: Any) -> FileSource:
    return file_source(SourceConfig(id="imp", type="file", options={"path": str(path), **options}))


async def read(src: FileSource, cursor: str | None = None, stop_after: int | None = None) -> list[RawEvent]:
    got: list[RawEvent] = []
    async for event in src.events(cursor):
        got.append(event)
        if stop_after is not None and len(got) >= stop_after:
            break  # like a killed import: the generator is abandoned mid-file
    return got


@pytest.mark.parametrize(
    ("parts", "fmt", "rows"),
    [
        (("mastodon", "statuses_mastodonpy.jsonl"), "mastodon", 68),
        (("reddit", "r_all_new.listing.json"), "reddit", 1),
        (("rss", "rss-parser", "heise.atom"), "feed", 1),
    ],
)
def test_real_files_are_detected_and_read(parts: tuple[str, ...], fmt: str, rows: int) -> None:
    src = source(shared_data("payloads", *parts))
    got = asyncio.run(read(src))
    assert src.format == fmt
    assert len(got) == rows
    assert {e.format for e in got} == {fmt}
    assert [e.position for e in got] == [str(i) for i in range(1, rows + 1)]
    assert any(isinstance(d, Draft) for e in got for d in normalize(fmt, e.payload))


def test_killed_import_resumes_after_the_last_row(tmp_path: Path) -> None:
    lines = shared_data("payloads", "reddit", "things.jsonl").read_bytes().splitlines()[:250]
    path = tmp_path / "things.jsonl"
    path.write_bytes(b"\n".join(lines[:100]) + b"\n\n" + b"\n".join(lines[100:]) + b"\n")  # a blank line too
    first = asyncio.run(read(source(path, batch_rows=32), stop_after=77))
    rest = asyncio.run(read(source(path, batch_rows=32), first[-1].position))
    assert [e.payload for e in first + rest] == lines
    assert rest[0].position == "78"
    assert {e.format for e in first} == {"reddit"}


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "statuses.jsonl"
    path.write_bytes(shared_data("payloads", "mastodon", "statuses_mastodonpy.jsonl").read_bytes())
    src = source(path, format="jsonl")
    assert src.format == "jsonl"
    assert len(asyncio.run(read(src))) == 68


def test_undetectable_file_and_bad_cursor(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02 not a known format")
    with pytest.raises(ConfigError, match=r"sources\.imp\.format .*could not be detected"):
        source(junk)
    good = shared_data("payloads", "mastodon", "statuses_mastodonpy.jsonl")
    with pytest.raises(SourceError, match="not a row number"):
        asyncio.run(read(source(good), "offset:12"))
