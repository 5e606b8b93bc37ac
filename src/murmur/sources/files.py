"""Files: import a JSON lines / JSON / CSV / Parquet file or a saved feed, resumably.

Rows are read by ``murmur.sources.normalize.iter_file_rows`` (the normalizers' side owns what a row
is for each format: a JSONL line, a CSV or Parquet row as JSON bytes, an element of a JSON array, a
whole feed document) in a worker thread, ``batch_rows`` at a time, so a large file never blocks the
event loop. Each row is one event; the stream ends at the end of the file.

Cursor: the 1-based number of the last row emitted (line number for JSON lines). A killed import
resumes after that row; rows before it are skipped without being normalized again.

Options: ``path`` (required; must exist), ``format`` (``auto``, the default, detects it from the
suffix and the first bytes; or a normalizer name: ``jsonl``, ``csv``, ``parquet``, ``feed``,
``jetstream``, ``mastodon``, ``reddit``: e.g. a JSON lines file of Mastodon statuses is
``format = "mastodon"``), ``batch_rows`` (1000 rows per read), and for ``jsonl``, ``csv`` and
``parquet`` files ``columns`` (a table field → the file's column, e.g. ``{text = "Tweet Text"}``;
fields as ``murmur.sources.normalize.mapping.COLUMN_FIELDS``) and ``time_from_id`` (``"twitter"``:
date rows that have no time by their tweet id). A CSV or Parquet file must have each mapped column.
Events of a mapped file carry the mapping in their format (``csv?text=Tweet%20Text``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterator
from itertools import islice
from pathlib import Path

import msgspec

from murmur.config import SourceConfig
from murmur.errors import PayloadError, SourceError
from murmur.registry import RegistryError
from murmur.sources.backoff import config_error, parse_options, positive
from murmur.sources.base import SourceStats
from murmur.sources.normalize import detect_format, get_normalizer, iter_file_rows, mapping_format
from murmur.sources.normalize.files import FILE_FORMATS, file_columns
from murmur.sources.normalize.mapping import find_columns
from murmur.types import RawEvent


class FileOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str
    format: str = "auto"
    batch_rows: int = 1000
    columns: dict[str, str] = msgspec.field(default_factory=dict)
    time_from_id: str = ""


def _take(rows: Iterator[tuple[str, bytes]], n: int) -> list[tuple[str, bytes]]:
    return list(islice(rows, n))


class FileSource:
    """One file, read once from the cursor to its end; see the module docstring."""

    def __init__(
        self, source_id: str, path: Path, fmt: str, batch_rows: int, event_format: str | None = None
    ) -> None:
        self.id = source_id
        self.path = path
        self.format = fmt
        self.event_format = event_format or fmt
        """The events' format: ``format``, with the column mapping if there is one (``csv?text=...``)."""
        self.batch_rows = batch_rows
        self.stats = SourceStats()
        self.stats.extra.update(path=str(path), format=self.event_format)

    def _start_after(self, cursor: str | None) -> int:
        if not cursor:
            return 0
        try:
            value = int(cursor)
        except ValueError:
            value = -1
        if value < 0:
            msg = (
                f"file source {self.id!r}: stored cursor {cursor!r} is not a row number; "
                "give the source another id to read the file from the start (murmur import does so "
                "by itself for a file that has changed)"
            )
            raise SourceError(msg)
        return value

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        start_after = self._start_after(cursor)
        rows = await asyncio.to_thread(iter_file_rows, self.path, self.format, start_after=start_after)
        try:
            while True:
                batch = await asyncio.to_thread(_take, rows, self.batch_rows)
                if not batch:
                    return
                for position, payload in batch:
                    self.stats.events += 1
                    yield RawEvent(self.id, self.event_format, payload, position)
        finally:
            if isinstance(rows, Generator):
                rows.close()


def file_source(config: SourceConfig) -> FileSource:
    """Factory registered as source type ``file``."""
    options = parse_options(config, FileOptions)
    path = Path(options.path).expanduser()
    if not path.is_file():
        raise config_error(config, "path", f"{options.path!r} is not an existing file")
    positive(config, "batch_rows", options.batch_rows)
    fmt = options.format.strip().lower()
    if fmt == "auto":
        try:
            fmt = detect_format(path)
        except PayloadError as exc:
            raise config_error(config, "format", f"could not be detected: {exc.reason}") from None
    try:
        get_normalizer(fmt)
    except RegistryError as exc:
        raise config_error(config, "format", f"{exc}; or use 'auto'") from None
    return FileSource(config.id, path, fmt, options.batch_rows, _event_format(config, options, path, fmt))


def _event_format(config: SourceConfig, options: FileOptions, path: Path, fmt: str) -> str:
    """``fmt`` with the source's column mapping, checked against the file's header."""
    if not options.columns and not options.time_from_id:
        return fmt
    if fmt.partition("@")[0] not in FILE_FORMATS:
        key = "columns" if options.columns else "time_from_id"
        problem = f"applies to {', '.join(FILE_FORMATS)} files only, not to format {fmt!r}"
        raise config_error(config, key, problem)
    try:
        event_format = mapping_format(fmt, options.columns, options.time_from_id)
    except PayloadError as exc:
        key = "time_from_id" if exc.field == "time_from_id" else f"columns.{exc.field}"
        raise config_error(config, key, exc.reason) from None
    header = file_columns(path, fmt)
    if header is not None and (missing := find_columns(options.columns, header)):
        name, column = next(iter(missing.items()))
        problem = f"{path.name} has no column {column!r}; its columns: {', '.join(header)}"
        raise config_error(config, f"columns.{name}", problem)
    return event_format
