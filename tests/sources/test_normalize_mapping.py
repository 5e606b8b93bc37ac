"""Column mappings of files: forgiving names, explicit columns, helpful reasons, dates from tweet ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from murmur.config import SourceConfig
from murmur.errors import ConfigError, PayloadError
from murmur.registry import RegistryError
from murmur.sources.files import FileSource, file_source
from murmur.sources.normalize import (
    DEFAULT_MAPPING,
    FileMapping,
    file_normalizer,
    get_normalizer,
    mapping_format,
    normalize,
    normalize_row,
)
from murmur.sources.normalize.mapping import COLUMN_FIELDS, time_from_twitter_id
from murmur.types import Draft

BOSTON_ID = "323808103780990976"
BOSTON_TIME = datetime(2013, 4, 15, 14, 40, 42, 662000, tzinfo=UTC)
CRISISLEX = {
    "Tweet ID": BOSTON_ID,
    "Tweet Text": "Explosion at the marathon finish line",
    "Information Source": "Eyewitness",
}


def test_column_names_match_whatever_their_case_spaces_and_hyphens() -> None:
    brandwatch = {
        "Query Id": "1",
        " Full Text ": "flooding on main street",
        "Date": "2024-05-01 12:00:00.0",
        "Title": "a title",
        "Url": "https://news.example/a",
        "Domain": "news.example",
        "Author": "someone",
        "Language": "en",
        "Country Code": "DE",
        "Hashtags": "flood, storm",
    }
    d = normalize_row(DEFAULT_MAPPING, brandwatch)
    assert (d.text, d.title, d.site, d.lang_declared, d.country) == (
        "flooding on main street",
        "a title",
        "news.example",
        "en",
        "DE",
    )
    assert d.created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert d.author_raw_id == "someone"  # pseudonymized by the gate, as every author column
    assert d.urls == ["https://news.example/a"]
    assert d.hashtags == ["flood", "storm"]
    meltwater = {"Hit Sentence": "water everywhere", "Headline": "Floods", "Date": "2024-05-01", "URL": "x"}
    m = normalize_row(DEFAULT_MAPPING, meltwater)
    assert (m.text, m.title) == ("water everywhere", "Floods")
    c = normalize_row(DEFAULT_MAPPING, {**CRISISLEX, " Created-At": "2013-04-15T18:50:00Z"})
    assert (c.post_id, c.text) == (BOSTON_ID, CRISISLEX["Tweet Text"])
    assert c.created_at == datetime(2013, 4, 15, 18, 50, tzinfo=UTC)
    # an exact name wins over a forgiving one, and the outer column of a nested name matches too
    both = {"Text": "forgiving", "text": "exact", "created_at": "2024-05-01", "User": {"id_str": "u9"}}
    b = normalize_row(DEFAULT_MAPPING, both)
    assert (b.text, b.author_raw_id) == ("exact", "u9")


def test_a_header_is_matched_once_not_once_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    real = FileMapping.resolve

    def counted(self: FileMapping, keys: Any) -> FileMapping:
        calls.append(tuple(keys))
        return real(self, keys)

    monkeypatch.setattr(FileMapping, "resolve", counted)
    normalizer = file_normalizer(DEFAULT_MAPPING)
    for i in range(50):
        row = {"Tweet Text": f"row {i}", "Date": "2024-05-01", "Tweet ID": str(i)}
        [draft] = normalizer(orjson.dumps(row))
        assert isinstance(draft, Draft)
        assert draft.text == f"row {i}"
    assert calls == [("Tweet Text", "Date", "Tweet ID")]


def test_a_row_without_any_text_column_names_its_columns_not_its_values() -> None:
    row = {"Message ID": "7", "Contents": "secret@example.org said hi", "Date": "2024-05-01"}
    with pytest.raises(PayloadError) as info:
        normalize_row(DEFAULT_MAPPING, row)
    reason = info.value.reason
    assert "its columns: Message ID, Contents, Date" in reason
    assert "--column text=NAME" in reason
    assert "secret" not in reason
    assert "said hi" not in reason
    # a text column that is there but empty in this row: the short reason
    with pytest.raises(PayloadError) as empty:
        normalize_row(DEFAULT_MAPPING, {"text": "", "Date": "2024-05-01"})
    assert "its columns" not in empty.value.reason
    # no time column: the columns, and the opt-in for tweet ids where the row has an id
    with pytest.raises(PayloadError) as undated:
        normalize_row(DEFAULT_MAPPING, CRISISLEX)
    assert undated.value.field == "created_at"
    assert "its columns: Tweet ID, Tweet Text, Information Source" in undated.value.reason
    assert "--time-from-id twitter" in undated.value.reason
    wide = {f"column number {i} with a rather long name indeed": "v" for i in range(40)}
    with pytest.raises(PayloadError) as many:
        normalize_row(DEFAULT_MAPPING, wide)
    assert "(28 more)" in many.value.reason
    assert len(many.value.reason) < 800


def test_explicit_columns_replace_the_candidates() -> None:
    mapping = FileMapping.mapped({"text": "Information Source", "created_at": "When"})
    row = {**CRISISLEX, "When": "2013-04-15T19:00:00Z", "created_at": "2020-01-01"}
    d = normalize_row(mapping, row)
    assert (d.text, d.created_at) == ("Eyewitness", datetime(2013, 4, 15, 19, tzinfo=UTC))
    assert d.post_id == BOSTON_ID  # the other fields keep the default candidates
    with pytest.raises(
        PayloadError, match=r"'txt' is not a field of a post; valid fields: text, id, "
    ) as bad:
        FileMapping.mapped({"txt": "Tweet Text"})
    assert bad.value.field == "txt"
    with pytest.raises(PayloadError, match="must be a column name"):
        FileMapping.mapped({"text": " "})
    assert "text" in COLUMN_FIELDS
    assert "platform" not in COLUMN_FIELDS


def test_a_mapping_travels_as_the_format() -> None:
    fmt = mapping_format("csv", {"text": "Tweet Text"}, "twitter")
    assert fmt == "csv?text=Tweet%20Text&time_from_id=twitter"
    assert mapping_format("csv", {}) == "csv"
    [got] = normalize(fmt, orjson.dumps({**CRISISLEX, "text": "the default's first column"}))
    assert isinstance(got, Draft)
    assert (got.text, got.created_at) == (CRISISLEX["Tweet Text"], BOSTON_TIME)
    assert get_normalizer(fmt) is get_normalizer(fmt)  # built once
    with pytest.raises(RegistryError, match="only jsonl, csv, parquet"):
        get_normalizer("jetstream?text=x")
    with pytest.raises(RegistryError, match="not a field"):
        get_normalizer("csv?txt=x")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (BOSTON_ID, BOSTON_TIME),
        (int(BOSTON_ID), BOSTON_TIME),
        ("'325208201740029952'", datetime(2013, 4, 19, 11, 24, 12, 28000, tzinfo=UTC)),  # CrisisLex T6
        (" 1364275512123846656 ", datetime(2021, 2, 23, 18, 6, 43, 760000, tzinfo=UTC)),
    ],
)
def test_time_from_a_twitter_snowflake(raw: Any, expected: datetime) -> None:
    assert time_from_twitter_id(raw, "Tweet ID") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "20",
        "29700859247",
        "abc",
        "3.238e+17",
        3.238e17,
        True,
        "９１２３４５６７８９０１２３４５６７",
        str(2**63 - 1),
        "1" * 21,
    ],
)
def test_ids_that_are_no_snowflakes_give_no_time(raw: Any) -> None:
    with pytest.raises(PayloadError, match="not a Twitter/X snowflake id") as info:
        time_from_twitter_id(raw, "Tweet ID")
    assert info.value.field == "created_at"


def test_time_from_id_is_opt_in_and_a_time_column_comes_first() -> None:
    with pytest.raises(PayloadError, match="no time"):
        normalize_row(DEFAULT_MAPPING, CRISISLEX)  # never guessed
    by_id = FileMapping(time_from_id="twitter")
    assert normalize_row(by_id, CRISISLEX).created_at == BOSTON_TIME
    dated = {**CRISISLEX, "created_at": "2013-04-16T00:00:00Z"}
    assert normalize_row(by_id, dated).created_at == datetime(2013, 4, 16, tzinfo=UTC)
    with pytest.raises(PayloadError, match="not a Twitter/X snowflake"):
        normalize_row(by_id, {**CRISISLEX, "Tweet ID": "42"})
    with pytest.raises(PayloadError, match="nor an id to date it by"):
        normalize_row(by_id, {"Tweet Text": "x"})
    with pytest.raises(PayloadError, match="time_from_id 'facebook'"):
        FileMapping(time_from_id="facebook")


def test_an_id_a_spreadsheet_quoted_is_the_same_id() -> None:
    """CrisisLex T6 writes tweet ids as ``'325208201740029952'`` (a spreadsheet's "keep as text"
    marks): the post's id is the tweet's id, so the same tweet from T26 is the same post."""
    by_id = FileMapping(time_from_id="twitter")
    for quoted in (f"'{BOSTON_ID}'", f"'{BOSTON_ID}", f'"{BOSTON_ID}"', f" '{BOSTON_ID}' "):
        got = normalize_row(by_id, {**CRISISLEX, "Tweet ID": quoted})
        assert got.post_id == normalize_row(by_id, CRISISLEX).post_id
        assert BOSTON_ID in got.post_id
        assert "'" not in got.post_id
    # only numbers are unquoted: an id that is text keeps its marks
    text_id = {"id": "'abc'", "text": "x", "time": "2024-01-01"}
    assert "'abc'" in normalize_row(DEFAULT_MAPPING, text_id).post_id


# --- the file source's options ------------------------------------------------------------------------


def crisislex_csv(tmp_path: Path) -> Path:
    path = tmp_path / "boston.csv"
    path.write_text(
        "Tweet ID, Tweet Text, Information Source\n"
        f'"{BOSTON_ID}","Explosion at the finish line",Eyewitness\n'
        '"325208201740029952","Stay safe Boston",Outsiders\n'
    )
    return path


def source(path: Path, **options: Any) -> FileSource:
    return file_source(SourceConfig(id="imp", type="file", options={"path": str(path), **options}))


def test_config_columns_and_time_from_id(tmp_path: Path) -> None:
    path = crisislex_csv(tmp_path)
    src = source(path, columns={"community": "Information Source"}, time_from_id="twitter")
    assert src.format == "csv"
    assert src.event_format == "csv?community=Information%20Source&time_from_id=twitter"

    async def drafts() -> list[Any]:
        return [d for e in [e async for e in src.events(None)] for d in normalize(e.format, e.payload)]

    got = asyncio.run(drafts())
    assert [(d.created_at, d.community) for d in got] == [
        (BOSTON_TIME, "Eyewitness"),
        (datetime(2013, 4, 19, 11, 24, 12, 28000, tzinfo=UTC), "Outsiders"),
    ]


def test_config_columns_are_checked_against_the_header(tmp_path: Path) -> None:
    path = crisislex_csv(tmp_path)
    with pytest.raises(
        ConfigError, match=r"sources\.imp\.columns\.text .*boston\.csv has no column 'Tweet Txt'"
    ) as e:
        source(path, columns={"text": "Tweet Txt"})
    assert "its columns: Tweet ID, Tweet Text, Information Source" in str(e.value)
    with pytest.raises(ConfigError, match=r"sources\.imp\.columns\.txt .*valid fields: text, id"):
        source(path, columns={"txt": "Tweet Text"})
    with pytest.raises(ConfigError, match=r"sources\.imp\.time_from_id .*'facebook'"):
        source(path, time_from_id="facebook")
    with pytest.raises(ConfigError, match=r"sources\.imp\.columns .*jsonl, csv, parquet files only"):
        source(path, format="mastodon", columns={"text": "Tweet Text"})
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"Tweet Text": ["x"], "Tweet ID": [BOSTON_ID]}), parquet)
    with pytest.raises(ConfigError, match=r"has no column 'body'; its columns: Tweet Text, Tweet ID"):
        source(parquet, columns={"text": "body"})
    assert source(parquet, columns={"text": "tweet text"}).event_format == "parquet?text=tweet%20text"
