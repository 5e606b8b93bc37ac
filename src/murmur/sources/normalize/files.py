"""Generic files: JSON lines, CSV and Parquet rows with a column mapping, and reading those files.

The unit normalized is one *row*. ``iter_file_rows`` turns any file into ``(position, payload)``
pairs, where a CSV or Parquet row's payload is the row as JSON bytes, so every row can be quarantined
and normalized again the same way; ``normalize_row(mapping, row)`` turns one row into a ``Draft``.

``FileMapping`` (``mapping.py``) names the column(s) of each field. The default recognises common
exports: twarc (``id``/``text``/``author_id``/``created_at``/``lang``, nested ``author.id`` or
``user.id_str``), 4CAT (``id``/``body``/``author``/``timestamp``/``subject``), Pushshift Reddit dumps
(``id``/``body``/``selftext``/``author``/``created_utc``/``subreddit``), Brandwatch (``Full Text``,
``Date``, ``Title``, ``Url``, ``Domain``, ``Language``, ``Country Code``), Meltwater (``Hit
Sentence``, ``Headline``, ``URL``), CrisisLex (``Tweet ID``, ``Tweet Text``) and plain
``text``/``created_at`` tables. Each field lists candidate columns; the first present, non-empty
value wins, and dotted names reach into nested objects. Names match forgivingly (case, surrounding
spaces, and spaces, hyphens and underscores alike), resolved once per header. ``--column
FIELD=NAME`` (``FileMapping.mapped``) reads a field from the one named column instead.

Rules: a row needs text (or a title) and a time; times may be ISO 8601 (also with a trailing
`` UTC``, as SQL exports write it), RFC 2822, Twitter's ``Wed Oct 10 20:19:24 +0000 2018``, compact
``YYYYMMDD`` / ``YYYYMMDDhhmmss``, or Unix seconds / milliseconds (naive times are UTC); with
``time_from_id = "twitter"`` a row without a time is dated by its tweet id's snowflake. A row whose
columns include none of a required field's candidates is quarantined with a reason that names its
columns (never its values) and how to map one. A row
without an id gets a stable content hash, so importing the same file twice stores each row once.
"""

from __future__ import annotations

import codecs
import csv
import email.utils
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import orjson

from murmur.errors import PayloadError, SourceError
from murmur.sources.normalize._common import (
    MAX_PAYLOAD_BYTES,
    bounded_unique,
    check_size,
    clean_id,
    clean_lang,
    clean_text,
    content_hash,
    from_epoch,
    hashtag,
    json_error,
    parse_iso,
    urls_in_text,
)
from murmur.sources.normalize.mapping import (
    DEFAULT_MAPPING,
    Columns,
    FileMapping,
    time_from_twitter_id,
    unquoted_number,
)
from murmur.types import Draft, Event
from murmur.urls import domain_of

log = logging.getLogger(__name__)

UNKNOWN_AUTHOR = "(unknown)"
"""The author of a row that names none: one pseudonym for all such rows, so k-anonymity counts them
as one author (it cannot know that more people stand behind them)."""
ERROR_KEY = "_murmur_error"
"""A row payload ``{"_murmur_error": reason}`` stands for a row the file reader could not read."""

_MISSING = ("", "none", "null", "nan", "n/a")
_FALSE = frozenset({"", "0", "false", "f", "no", "n", "none", "null", "nan", "[]", "{}"})


def _lookup(row: Mapping[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    if "." not in name:
        return None
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _first(row: Mapping[str, Any], names: Columns) -> tuple[str, Any]:
    """(column, value) of the first present, non-empty candidate; ("", None) when there is none."""
    for name in names:
        value = _lookup(row, name)
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str) and value.strip().lower() in _MISSING:
            continue
        return name, value
    return "", None


def _scalar_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return None


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == value and value != 0
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    if isinstance(value, list | tuple | dict):
        return len(value) > 0
    return True


def _strings(
    value: Any, keys: tuple[str, ...] = ("tag", "text", "name", "username", "screen_name")
) -> list[str]:
    """A column holding several strings: a list (of strings or of objects), or a delimited string."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("[") and value.endswith("]"):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                value = value[1:-1]
        if isinstance(value, str):
            return [p.strip().strip("'\"") for p in value.replace(",", " ").split()][:200]
    if isinstance(value, list):
        found: list[str] = []
        for item in value[:200]:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, Mapping):
                for key in keys:
                    if isinstance(item.get(key), str):
                        found.append(item[key])
                        break
        return found
    return []


def parse_time(value: Any, column: str, fmt: str = "file") -> datetime:
    """A row's time: ISO 8601, RFC 2822, Twitter's format or Unix seconds/milliseconds → aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and (compact := _compact_date(str(value))) is not None:
        return compact
    if isinstance(value, int | float):
        return _epoch(float(value), column, fmt)
    if not isinstance(value, str):
        msg = f"{fmt}: column {column!r} holds {type(value).__name__}, not a time"
        raise PayloadError(msg, field=column)
    text = value.strip()
    if (compact := _compact_date(text)) is not None:
        return compact
    try:
        return _epoch(float(text), column, fmt)
    except ValueError:
        pass
    try:
        # BigQuery, PostgreSQL and others write "2024-05-01 12:00:00 UTC"
        return parse_iso(text[:-4] if text[-4:].upper() in (" UTC", " GMT") else text, column, fmt)
    except PayloadError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            msg = (
                f"{fmt}: column {column!r} value {text[:64]!r} is not a time "
                "(ISO 8601, RFC 2822, Twitter's format or Unix seconds)"
            )
            raise PayloadError(msg, field=column) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _compact_date(text: str) -> datetime | None:
    """``YYYYMMDD`` or ``YYYYMMDDhhmmss`` (GDELT, many SQL exports) as UTC, else None. Read as Unix
    time these would be 1970-1973 seconds or milliseconds past 2286, never a post's time."""
    if len(text) not in (8, 14) or not text.isdigit() or not text.isascii():
        return None
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    if not 1990 <= year <= 2200:
        return None
    clock = (int(text[8:10]), int(text[10:12]), int(text[12:14])) if len(text) == 14 else (0, 0, 0)
    try:
        return datetime(year, month, day, *clock, tzinfo=UTC)
    except ValueError:
        return None


def _epoch(seconds: float, column: str, fmt: str) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError
    if abs(seconds) > 1e14:  # microseconds
        seconds /= 1e6
    elif abs(seconds) > 1e11:  # milliseconds
        seconds /= 1e3
    return from_epoch(seconds, column, fmt)


def _canonical(row: Mapping[str, Any]) -> str:
    """The row as sorted JSON (stable across runs), for an id when the row has none."""
    try:
        return msgspec.json.encode(row, order="sorted").decode("utf-8")
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return repr(sorted((str(k), repr(v)) for k, v in row.items()))


_LISTED_COLUMNS = 12
_LISTED_CHARS = 40


def _its_columns(row: Mapping[str, Any], field_name: str, also: str = "") -> str:
    """`` (its columns: a, b, ...; map one with --column FIELD=NAME)``: the row's column names (never
    its values, which may be personal data), bounded, for a row none of whose columns a field has."""
    names = [str(k) for k in row if k not in (ERROR_KEY, "_extra")]
    shown = [n if len(n) <= _LISTED_CHARS else n[: _LISTED_CHARS - 1] + "…" for n in names[:_LISTED_COLUMNS]]
    more = f", … ({len(names) - _LISTED_COLUMNS} more)" if len(names) > _LISTED_COLUMNS else ""
    return (
        f" (its columns: {', '.join(shown) or 'none'}{more}; map one with --column {field_name}=NAME{also})"
    )


def normalize_row(mapping: FileMapping, row: Mapping[str, Any]) -> Draft:
    """One row (a dict from JSON, CSV or Parquet) → a draft, following ``mapping``, whose column
    names are matched to the row's as ``FileMapping.resolve`` does."""
    return _normalize_row(mapping, mapping.resolve(row), row)


def _normalize_row(mapping: FileMapping, cols: FileMapping, row: Mapping[str, Any]) -> Draft:
    """``normalize_row`` with ``cols``, ``mapping`` resolved to the row's column names."""
    error = row.get(ERROR_KEY)
    if isinstance(error, str):
        raise PayloadError(error, field="row")
    fmt = "file"
    _, raw_text = _first(row, cols.text)
    _, raw_title = _first(row, cols.title)
    text = _scalar_str(raw_text) or ""
    title = _scalar_str(raw_title)
    if not text.strip() and not title:
        msg = f"{fmt}: the row has no text; none of the columns {', '.join(mapping.text)} holds any"
        if not cols.text and not cols.title:
            msg += _its_columns(row, "text")
        raise PayloadError(msg, field="text")
    if not text.strip() and title:
        text = title
    time_col, raw_time = _first(row, cols.created_at)
    if raw_time is not None:
        created_at = parse_time(raw_time, time_col, fmt)
    elif mapping.time_from_id:
        id_col, raw_id = _first(row, cols.id)
        if raw_id is None:
            msg = (
                f"{fmt}: the row has no time, nor an id to date it by; "
                f"none of the columns {', '.join(mapping.id)} holds one"
            )
            raise PayloadError(msg, field="created_at")
        created_at = time_from_twitter_id(raw_id, id_col)
    else:
        msg = f"{fmt}: the row has no time; none of the columns {', '.join(mapping.created_at)} holds one"
        if not cols.created_at:
            by_id = ", or date tweets by their id with --time-from-id twitter" if cols.id else ""
            msg += _its_columns(row, "created_at", by_id)
        raise PayloadError(msg, field="created_at")

    _, raw_id = _first(row, cols.id)
    raw_id_str = _scalar_str(raw_id)
    if raw_id_str:
        raw_id_str = unquoted_number(raw_id_str)  # one tweet, one id, quoted or not

        post_id = clean_id(mapping.id_prefix + raw_id_str, "id", fmt)
    else:
        post_id = mapping.id_prefix + content_hash(_canonical(row))
    _, raw_author = _first(row, cols.author)
    author = _scalar_str(raw_author)
    author = clean_id(author, "author", fmt) if author and author.strip() else UNKNOWN_AUTHOR

    _, raw_url = _first(row, cols.url)
    urls = [u for u in _strings(raw_url, ("expanded_url", "url")) if u.startswith(("http://", "https://"))]
    urls.extend(urls_in_text(text))
    _, raw_lang = _first(row, cols.lang)
    if isinstance(raw_lang, list):
        raw_lang = raw_lang[0] if raw_lang else None
    _, raw_site = _first(row, cols.site)
    site = _scalar_str(raw_site)
    if site and "://" in site:
        site = domain_of(site)
    elif site and site.lower().startswith("self."):
        site = "reddit.com"  # a Reddit self post's "domain": self.<subreddit>, or self.<username>
    _, raw_community = _first(row, cols.community)
    community = _scalar_str(raw_community)
    _, raw_country = _first(row, cols.country)
    country = _scalar_str(raw_country)
    return Draft(
        platform=mapping.platform,
        post_id=post_id,
        created_at=created_at,
        text=clean_text(text),
        author_raw_id=author,
        lang_declared=clean_lang(raw_lang),
        site=clean_text(site.strip().lower(), limit=253) if site else None,
        community=clean_text(community, limit=200) if community else None,
        urls=bounded_unique(clean_text(u, limit=4096) for u in urls),
        hashtags=bounded_unique(hashtag(t) for t in _strings(_first(row, cols.hashtags)[1])),
        mentions=bounded_unique(
            clean_text(m.lstrip("@"), limit=512) for m in _strings(_first(row, cols.mentions)[1])
        ),
        is_reply=_truthy(_first(row, cols.is_reply)[1]),
        is_repost=_truthy(_first(row, cols.is_repost)[1]),
        has_media=_truthy(_first(row, cols.has_media)[1]),
        country=clean_text(country.strip(), limit=2) if country and len(country.strip()) == 2 else None,
        title=clean_text(title, limit=1000) if title else None,
    )


_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
_row_decoder = msgspec.json.Decoder(dict[str, Any])
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])


_RESOLVED_HEADERS = 256


def file_normalizer(mapping: FileMapping = DEFAULT_MAPPING) -> Callable[[bytes], list[Event]]:
    """A normalizer for row payloads (JSON objects, as ``iter_file_rows`` yields them) under ``mapping``."""

    resolved: dict[tuple[str, ...], FileMapping] = {}  # by a row's column names: once per header

    def normalize_rows(payload: bytes) -> list[Event]:
        check_size(payload, "file")
        try:
            row = _row_decoder.decode(payload)
        except _DECODE_ERRORS as exc:
            err = json_error(exc, payload, "file")
            if isinstance(exc, msgspec.ValidationError):
                err = PayloadError("a file row must be a JSON object", field="row")
            raise err from None
        keys = tuple(row)
        cols = resolved.get(keys)
        if cols is None:
            if len(resolved) >= _RESOLVED_HEADERS:  # rows of ever new columns: keep memory bounded
                resolved.clear()
            cols = resolved[keys] = mapping.resolve(keys)
        return [_normalize_row(mapping, cols, row)]

    return normalize_rows


normalize_jsonl = file_normalizer(DEFAULT_MAPPING)


# --- reading files ----------------------------------------------------------------------------------

_CHUNK = 1 << 20


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _row_bytes(row: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(row, default=_json_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return orjson.dumps({ERROR_KEY: f"row could not be converted to JSON: {exc}"})


def _lines(path: Path, start_after: int) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as fh:
        number = 0
        while True:
            line = fh.readline(MAX_PAYLOAD_BYTES + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_PAYLOAD_BYTES and not line.endswith(b"\n"):
                while True:  # skip the rest of an over-long line; the kept head is rejected by size
                    rest = fh.readline(_CHUNK)
                    if not rest or rest.endswith(b"\n"):
                        break
            if number <= start_after:
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield (str(number), line)


def _is_json_lines(path: Path, *, rows: bool = False) -> bool:
    """Does the file hold one JSON value per line (rather than one, possibly indented, document)?

    With ``rows`` (generic rows, which are objects), a whole array on the file's only line is a
    one-line array document, whose elements are the rows; followed by more lines, it is a bad row."""
    with path.open("rb") as fh:
        while True:
            line = fh.readline(MAX_PAYLOAD_BYTES + 1)
            if not line:
                return False
            if line.strip():
                break
        first = line.strip().removeprefix(b"\xef\xbb\xbf")
        try:
            msgspec.json.decode(first)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return False
        if rows and first[:1] == b"[":  # one array on the only line: a document; else lines
            return any(chunk.strip() for chunk in iter(lambda: fh.read(_CHUNK), b""))
        return True


def _document(path: Path) -> Iterator[tuple[str, bytes]]:
    size = path.stat().st_size
    if size > MAX_PAYLOAD_BYTES:
        msg = (
            f"{path} is one document of {size:,} bytes, more than the {MAX_PAYLOAD_BYTES:,} "
            "a payload may be; split it or convert it to JSON lines"
        )
        raise SourceError(msg)
    yield ("1", path.read_bytes())


def _json_document_rows(path: Path, start_after: int) -> Iterator[tuple[str, bytes]]:
    """A (possibly indented) JSON document: an array gives one row per element, an object one row."""
    for _, doc in _document(path):
        if not doc.strip().removeprefix(b"\xef\xbb\xbf").strip():
            return  # an empty file has no rows
        try:
            items = _array_decoder.decode(doc) if doc.lstrip()[:1] == b"[" else [msgspec.Raw(doc)]
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            items = [msgspec.Raw(doc)]  # the row normalizer reports what is wrong with it
        for number, item in enumerate(items, start=1):
            if number > start_after:
                yield (str(number), bytes(item))


def csv_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file is UTF-8 (with or without a BOM), else ``cp1252``: the
    Windows code page spreadsheet programs write CSV in, a superset of Latin-1's printable range."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            log.warning("%s is not UTF-8: reading it as Windows-1252 (cp1252)", path)
            return "cp1252"
    return "utf-8-sig"


_DELIMITERS = (",", ";", "\t", "|")


def _delimiter(header: str) -> str:
    """The delimiter a CSV header line uses: the most frequent of ``,`` ``;`` (what spreadsheet
    programs write where the decimal separator is a comma) tab and ``|``; a comma on a tie."""
    best = max(_DELIMITERS, key=header.count)
    return best if header.count(best) else ","


def _csv_rows(path: Path, start_after: int) -> Iterator[tuple[str, bytes]]:
    with path.open("r", encoding=csv_encoding(path), errors="replace", newline="") as fh:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else _delimiter(fh.readline())
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            msg = f"{path}: the CSV header row cannot be read ({exc})"
            raise SourceError(msg) from None
        header = [h.strip() for h in header]
        number = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                if number > start_after:
                    yield (str(number), orjson.dumps({ERROR_KEY: f"CSV row {number}: {exc}"}))
                continue
            number += 1
            if number <= start_after or not values:
                continue
            row: dict[str, Any] = dict(zip(header, values, strict=False))
            if len(values) > len(header):
                row["_extra"] = values[len(header) :]
            yield (str(number), _row_bytes(row))


def file_columns(path: str | Path, format: str) -> list[str] | None:
    """The column names of a CSV file's header or a Parquet file's schema, as written; None for
    formats without a header (JSON lines: each row has its own) and for an empty CSV file (no rows
    to read). Raises ``SourceError`` if unreadable."""
    p = Path(path)
    base = format.partition("?")[0].partition("@")[0]
    if base == "csv":
        try:
            with p.open("r", encoding=csv_encoding(p), errors="replace", newline="") as fh:
                delimiter = "\t" if p.suffix.lower() in (".tsv", ".tab") else _delimiter(fh.readline())
                fh.seek(0)
                header = next(csv.reader(fh, delimiter=delimiter), None)
                return None if header is None else [h.strip() for h in header]
        except (OSError, csv.Error) as exc:
            msg = f"{p}: the CSV header row cannot be read ({exc})"
            raise SourceError(msg) from None
    if base == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(p).schema_arrow.names)
        except (OSError, pa.ArrowException) as exc:
            msg = f"{p} cannot be read as Parquet: {exc}"
            raise SourceError(msg) from None
    return None


def _parquet_rows(path: Path, start_after: int) -> Iterator[tuple[str, bytes]]:
    import pyarrow as pa  # imported lazily: pyarrow is heavy and only Parquet files need it
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        msg = f"{path} cannot be read as Parquet: {exc}"
        raise SourceError(msg) from None
    number = 0
    groups: list[int] = []
    for i in range(pf.num_row_groups):
        rows = pf.metadata.row_group(i).num_rows
        if number + rows <= start_after:
            number += rows
            continue
        groups.append(i)
    if not groups:
        return
    for batch in pf.iter_batches(batch_size=2048, row_groups=groups):
        try:
            rows_list: list[dict[str, Any]] = batch.to_pylist()
        except (pa.ArrowException, ValueError, OverflowError) as exc:
            rows_list = [{ERROR_KEY: f"Parquet rows could not be read: {exc}"}] * batch.num_rows
        for row in rows_list:
            number += 1
            if number > start_after:
                yield (str(number), _row_bytes(row))


FILE_FORMATS = ("jsonl", "csv", "parquet")


def iter_file_rows(path: str | Path, format: str, *, start_after: int = 0) -> Iterator[tuple[str, bytes]]:
    """``(position, payload)`` for every row / line / document of a file, to feed ``normalize(format, …)``.

    * ``csv``, ``parquet``: one payload per row, the row as JSON bytes; position = 1-based row number
      (the header is not a row). A CSV file's delimiter is the one its header line uses most (``,``,
      ``;``, tab or ``|``); ``.tsv`` and ``.tab`` files are tab-separated. A CSV row that cannot be
      read becomes ``{"_murmur_error": reason}``, which the row normalizer quarantines with that reason.
    * ``jsonl``: one payload per non-blank line; position = 1-based line number. A file that is one
      (indented) JSON document instead gives one row per element of its array, or the object itself.
    * ``jetstream``, ``mastodon``, ``reddit``: JSON lines if the first line is a whole JSON value,
      else the whole file is one document (position ``1``).
    * ``feed``: the whole file is one document.

    ``start_after`` skips rows/lines whose position is at most that number (resume after a cursor).
    A CSV file that is not UTF-8 is read as Windows-1252 (``csv_encoding``), and what that cannot
    decode either becomes U+FFFD; lines longer than the payload limit are cut
    to that limit (and so rejected by the normalizer).
    """
    p = Path(path)
    if not p.is_file():
        msg = f"{p} is not a readable file"
        raise SourceError(msg)
    base = format.partition("?")[0].partition("@")[0]
    if base == "csv":
        return _csv_rows(p, start_after)
    if base == "parquet":
        return _parquet_rows(p, start_after)
    if base == "jsonl":
        return _lines(p, start_after) if _is_json_lines(p, rows=True) else _json_document_rows(p, start_after)
    if base == "feed":
        return _document(p) if start_after < 1 else iter(())
    if base in ("jetstream", "mastodon", "reddit"):
        if _is_json_lines(p):
            return _lines(p, start_after)
        return _document(p) if start_after < 1 else iter(())
    msg = (
        f"cannot read files of format {format!r}; "
        "use one of jsonl, csv, parquet, jetstream, mastodon, reddit, feed"
    )
    raise SourceError(msg)


__all__ = [
    "DEFAULT_MAPPING",
    "ERROR_KEY",
    "FILE_FORMATS",
    "FileMapping",
    "file_columns",
    "file_normalizer",
    "iter_file_rows",
    "normalize_jsonl",
    "normalize_row",
    "parse_time",
]
