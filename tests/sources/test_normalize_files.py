"""Generic files (JSON lines, CSV, Parquet), the column mapping, format detection and the registry."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from murmur.errors import PayloadError, SourceError
from murmur.sources import normalize as normalize_pkg
from murmur.sources.normalize import (
    BUILTINS,
    DEFAULT_MAPPING,
    NORMALIZERS,
    FileMapping,
    detect_format,
    file_normalizer,
    get_normalizer,
    iter_file_rows,
    normalize,
    normalize_row,
    register_builtins,
)
from murmur.sources.normalize.files import csv_encoding, parse_time
from murmur.testing import shared_data
from murmur.types import Draft
from tests.sources.fuzz_corpus import (
    _ATOM,
    _JSON_FEED,
    _RECORD,
    _RSS,
    _STATUS,
    _THING,
    _jetstream,
    assert_sound,
)

PAYLOADS = shared_data("payloads")

TWARC = {
    "id": "1364275512123846656",
    "text": "RT this #Climate thread https://t.co/abc",
    "author_id": "12345",
    "created_at": "2021-02-23T18:26:39.000Z",
    "lang": "en",
    "author": {"id": "12345", "username": "someone"},
    "entities": {"hashtags": [{"start": 8, "end": 16, "tag": "Climate"}], "mentions": [{"username": "WHO"}]},
    "in_reply_to_user_id": "999",
}
FOURCAT = {
    "id": "98765",
    "thread_id": "98700",
    "timestamp": "2023-01-05 12:30:00",
    "subject": "Thread title",
    "body": "a 4chan-style post",
    "author": "Anonymous",
}
PUSHSHIFT = {
    "id": "d1616q2",
    "body": "comment text",
    "author": "someone",
    "created_utc": 1458421476,
    "subreddit": "AskReddit",
    "parent_id": "t3_4b1tfm",
}


def test_default_mapping_reads_common_exports() -> None:
    t = normalize_row(DEFAULT_MAPPING, TWARC)
    assert t.post_id == "1364275512123846656"
    assert t.author_raw_id == "12345"
    assert t.created_at == datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)
    assert t.lang_declared == "en"
    assert t.hashtags == ["climate"]
    assert t.mentions == ["WHO"]
    assert t.urls == ["https://t.co/abc"]
    assert t.is_reply
    assert t.platform == "file"
    f = normalize_row(DEFAULT_MAPPING, FOURCAT)
    assert f.text == "a 4chan-style post"
    assert f.title == "Thread title"
    assert f.created_at == datetime(2023, 1, 5, 12, 30, tzinfo=UTC)
    assert f.author_raw_id == "Anonymous"
    p = normalize_row(DEFAULT_MAPPING, PUSHSHIFT)
    assert p.community == "AskReddit"
    assert p.created_at == datetime(2016, 3, 19, 21, 4, 36, tzinfo=UTC)
    # a Pushshift self post's "domain" is self.<subreddit>, and on a profile self.<username>
    profile = {**PUSHSHIFT, "subreddit": "u_someone", "domain": "self.someone", "is_self": True}
    assert normalize_row(DEFAULT_MAPPING, profile).site == "reddit.com"
    link = {**PUSHSHIFT, "domain": "i.redd.it"}
    assert normalize_row(DEFAULT_MAPPING, link).site == "i.redd.it"
    assert p.is_reply  # a Pushshift comment (parent_id), as the live Reddit source counts it
    assert not normalize_row(
        DEFAULT_MAPPING, {k: v for k, v in PUSHSHIFT.items() if k != "parent_id"}
    ).is_reply


def test_custom_mapping_and_platform() -> None:
    mapping = FileMapping.of(
        text="message", id="msg_id", created_at="sent", author="from.id", platform="telegram"
    )
    row = {"message": "hi", "msg_id": 7, "sent": "Wed, 02 Oct 2002 13:00:00 GMT", "from": {"id": "u1"}}
    d = normalize_row(mapping, row)
    assert (d.platform, d.post_id, d.author_raw_id, d.text) == ("telegram", "7", "u1", "hi")
    assert d.created_at == datetime(2002, 10, 2, 13, tzinfo=UTC)
    normalizer = file_normalizer(mapping)
    assert normalizer(orjson.dumps(row))[0] == d
    with pytest.raises(PayloadError, match="platform"):
        FileMapping(platform="myspace")  # type: ignore[arg-type]  # checked at run time too


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-02-23T18:26:39Z", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("2021-02-23 18:26:39", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("Tue Feb 23 18:26:39 +0000 2021", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("Tue, 23 Feb 2021 19:26:39 +0100", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        (1614104799, datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("1614104799", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        (1614104799000, datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        (1614104799.5, datetime(2021, 2, 23, 18, 26, 39, 500000, tzinfo=UTC)),
        ("2021-02-23 18:26:39 UTC", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("2021-02-23 18:26:39.5 gmt", datetime(2021, 2, 23, 18, 26, 39, 500000, tzinfo=UTC)),
        # compact dates, not Unix time (which would put them in 1970 or after 2286)
        ("20210223", datetime(2021, 2, 23, tzinfo=UTC)),
        (20210223, datetime(2021, 2, 23, tzinfo=UTC)),
        ("20210223182639", datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        (20210223182639, datetime(2021, 2, 23, 18, 26, 39, tzinfo=UTC)),
        ("16141047", datetime(1970, 7, 6, 19, 37, 27, tzinfo=UTC)),  # no date: Unix seconds
    ],
)
def test_time_formats(value: Any, expected: datetime) -> None:
    assert parse_time(value, "t") == expected


@pytest.mark.parametrize("value", ["soon", "NaN", 1e300, "2021-13-45", True, ["2021"], "-99999999999999999"])
def test_bad_times(value: Any) -> None:
    with pytest.raises(PayloadError) as info:
        parse_time(value, "created_at")
    assert info.value.field == "created_at"


def test_rows_missing_text_or_time_and_ids_by_content() -> None:
    with pytest.raises(PayloadError, match="no text") as info:
        normalize_row(DEFAULT_MAPPING, {"created_at": "2021-01-01", "id": "1"})
    assert info.value.field == "text"
    with pytest.raises(PayloadError, match="no time"):
        normalize_row(DEFAULT_MAPPING, {"text": "x"})
    row = {"text": "same", "created_at": "2021-01-01"}
    a = normalize_row(DEFAULT_MAPPING, row)
    assert a.post_id.startswith("sha256:")
    assert a.post_id == normalize_row(DEFAULT_MAPPING, dict(row)).post_id
    assert a.author_raw_id == "(unknown)"
    prefixed = normalize_row(FileMapping(id_prefix="ds1:"), {**row, "id": 5})
    assert prefixed.post_id == "ds1:5"
    with pytest.raises(PayloadError, match="field larger"):
        normalize_row(DEFAULT_MAPPING, {"_murmur_error": "CSV row 3: field larger than field limit"})


def test_jsonl_payloads() -> None:
    assert normalize("jsonl", orjson.dumps(TWARC))[0].post_id == TWARC["id"]
    for bad, field in ((b"[1]", "row"), (b"{", "payload"), (b"\xff", "payload")):
        with pytest.raises(PayloadError) as info:
            normalize("jsonl", bad)
        assert info.value.field == field


# --- reading files ------------------------------------------------------------------------------------


def test_iter_jsonl_positions_blank_lines_bom_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + orjson.dumps(TWARC) + b"\n\n" + orjson.dumps(FOURCAT) + b"\r\n" + b"{broken\n"
    )
    rows = list(iter_file_rows(path, "jsonl"))
    assert [p for p, _ in rows] == ["1", "3", "4"]
    assert normalize("jsonl", rows[0][1])[0].post_id == TWARC["id"]
    assert rows[1][1] == orjson.dumps(FOURCAT)
    assert [p for p, _ in iter_file_rows(path, "jsonl", start_after=3)] == ["4"]


def test_iter_json_document_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps([TWARC, FOURCAT], indent=2))
    rows = list(iter_file_rows(path, "jsonl"))
    assert [p for p, _ in rows] == ["1", "2"]
    assert [normalize("jsonl", b)[0].post_id for _, b in rows] == [TWARC["id"], FOURCAT["id"]]


def test_csv_delimiter_is_read_from_the_header(tmp_path: Path) -> None:
    # what spreadsheet programs write in Germany, France, …: every row quarantined as "no text" before
    path = tmp_path / "de.csv"
    path.write_text("id;text;created_at\n1;Hallo, Welt;2024-05-01T12:00:00Z\n", encoding="utf-8")
    (row,) = [normalize("csv", b)[0] for _, b in iter_file_rows(path, "csv")]
    assert isinstance(row, Draft)
    assert (row.post_id, row.text) == ("1", "Hallo, Welt")
    piped = tmp_path / "p.csv"
    piped.write_text("id|text|created_at\n2|a, b; c|2024-05-01\n", encoding="utf-8")
    (row,) = [normalize("csv", b)[0] for _, b in iter_file_rows(piped, "csv")]
    assert isinstance(row, Draft)
    assert row.text == "a, b; c"
    single = tmp_path / "one.csv"
    single.write_text("text\nno delimiter; at all\n", encoding="utf-8")
    assert [orjson.loads(b) for _, b in iter_file_rows(single, "csv")] == [{"text": "no delimiter; at all"}]


def test_iter_csv(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    big = "z" * 200_000
    path.write_text(
        "id,body,author,timestamp\n"
        "1,hello,a,2023-01-01 00:00:00\n"
        f'2,"{big}",b,2023-01-01 00:00:01\n'
        '3,"multi\nline",c,2023-01-01 00:00:02,extra\n',
        encoding="utf-8",
    )
    rows = list(iter_file_rows(path, "csv"))
    assert [p for p, _ in rows] == ["1", "2", "3"]
    first = normalize("csv", rows[0][1])[0]
    assert isinstance(first, Draft)
    assert (first.post_id, first.text, first.author_raw_id) == ("1", "hello", "a")
    with pytest.raises(PayloadError, match="field larger than field limit"):
        normalize("csv", rows[1][1])  # an unreadable row is quarantined, not fatal
    third = orjson.loads(rows[2][1])
    assert third["body"] == "multi\nline"
    assert third["_extra"] == ["extra"]
    assert [p for p, _ in iter_file_rows(path, "csv", start_after=2)] == ["3"]
    tsv = tmp_path / "x.tsv"
    tsv.write_text("id\ttext\tcreated_at\n1\ttab separated\t2020-01-01\n")
    tab = normalize("csv", next(iter(iter_file_rows(tsv, "csv")))[1])[0]
    assert isinstance(tab, Draft)
    assert tab.text == "tab separated"


def test_iter_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": [str(i) for i in range(10)],
            "text": [f"post {i}" for i in range(10)],
            "created_at": pa.array(
                [datetime(2024, 1, 1, i, tzinfo=UTC) for i in range(10)], pa.timestamp("us", "UTC")
            ),
            "blob": [b"\xff\x00"] * 10,
            "tags": [["A", "b"]] * 10,
        }
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=3)
    rows = list(iter_file_rows(path, "parquet"))
    assert [p for p, _ in rows] == [str(i) for i in range(1, 11)]
    d = normalize("parquet", rows[4][1])[0]
    assert isinstance(d, Draft)
    assert (d.post_id, d.text, d.created_at) == ("4", "post 4", datetime(2024, 1, 1, 4, tzinfo=UTC))
    assert d.hashtags == ["a", "b"]
    assert [p for p, _ in iter_file_rows(path, "parquet", start_after=7)] == ["8", "9", "10"]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(SourceError):
        list(iter_file_rows(bad, "parquet"))


def test_iter_documents_and_errors(tmp_path: Path) -> None:
    feed = tmp_path / "f.rss"
    feed.write_bytes(_RSS)
    assert list(iter_file_rows(feed, "feed")) == [("1", _RSS)]
    assert list(iter_file_rows(feed, "feed", start_after=1)) == []
    listing = tmp_path / "l.json"
    listing.write_text(json.dumps({"kind": "Listing", "data": {"children": [_THING]}}, indent=1))
    ((_pos, body),) = iter_file_rows(listing, "reddit")
    assert len(normalize("reddit", body)) == 2
    things = tmp_path / "t.jsonl"
    things.write_bytes(orjson.dumps(_THING) + b"\n" + orjson.dumps(_THING) + b"\n")
    assert [p for p, _ in iter_file_rows(things, "reddit")] == ["1", "2"]
    with pytest.raises(SourceError):
        list(iter_file_rows(tmp_path / "missing.csv", "csv"))
    with pytest.raises(SourceError):
        iter_file_rows(feed, "gopher")


# --- detection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (orjson.dumps(_jetstream(_RECORD)), "jetstream"),
        (orjson.dumps(_STATUS), "mastodon"),
        (orjson.dumps({"event": "update", "payload": "{}"}), "mastodon"),
        (orjson.dumps(_THING), "reddit"),
        (b'{"source_cassette": "x", "response": {}}', "reddit"),
        (_RSS, "feed"),
        (_ATOM, "feed"),
        (orjson.dumps(_JSON_FEED), "feed"),
        (orjson.dumps(TWARC) + b"\n", "jsonl"),
        (b"PAR1\x00\x00", "parquet"),
        (b"id,text,created_at\n1,a,2020\n", "csv"),
    ],
)
def test_detect_format_from_bytes(head: bytes, fmt: str) -> None:
    assert detect_format(head) == fmt


def test_detect_format_of_real_files_and_suffixes(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="pass --format"):
        detect_format(b"hello world")
    csv_file = tmp_path / "odd.csv"
    csv_file.write_text("just one column\nx\n")
    assert detect_format(csv_file) == "csv"
    empty = tmp_path / "quiet-day.jsonl"
    empty.write_bytes(b"\n")
    assert detect_format(empty) == "jsonl"  # no rows, and no error: an empty export is not broken
    with pytest.raises(PayloadError, match="pass --format"):
        detect_format(b"")
    if not PAYLOADS.is_dir():
        pytest.skip(f"real payloads not found at {PAYLOADS}")
    assert detect_format(PAYLOADS / "reddit" / "things.jsonl") == "reddit"
    assert detect_format(PAYLOADS / "reddit" / "top.listing.json") == "reddit"
    assert detect_format(PAYLOADS / "mastodon" / "statuses_mastodonpy.jsonl") == "mastodon"
    feeds = sorted((PAYLOADS / "rss" / "rss-parser").glob("*"))
    assert feeds
    assert {detect_format(f) for f in feeds} == {"feed"}


# --- registry -----------------------------------------------------------------------------------------


def test_registry_names_and_versions() -> None:
    register_builtins()
    register_builtins()  # idempotent
    for name in ("jetstream", "mastodon", "reddit", "feed", "jsonl", "csv", "parquet"):
        assert f"{name}@1" in NORMALIZERS.names()
        assert get_normalizer(name) is get_normalizer(f"{name}@1")


def test_a_registry_counts_its_names_without_listing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # get_normalizer checks the registry's size for every payload: len(), not a sorted names() list
    register_builtins()
    assert len(NORMALIZERS) == len(NORMALIZERS.names()) >= len(BUILTINS)
    listed: list[bool] = []
    original = NORMALIZERS.names

    def names() -> list[str]:
        listed.append(True)
        return original()

    monkeypatch.setattr(NORMALIZERS, "names", names)
    get_normalizer("jetstream")
    get_normalizer("jetstream")
    assert listed == []


def test_a_newer_version_registered_later_is_picked_up() -> None:
    def v1(payload: bytes) -> list[Any]:
        return []

    def v2(payload: bytes) -> list[Any]:
        return []

    NORMALIZERS.register("test-only-format@1", v1)
    assert get_normalizer("test-only-format") is v1
    NORMALIZERS.register("test-only-format@2", v2)
    assert get_normalizer("test-only-format") is v2


def test_normalize_turns_a_normalizer_bug_into_a_payload_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(payload: bytes) -> list[Any]:
        raise KeyError("bug")

    monkeypatch.setattr(normalize_pkg, "get_normalizer", lambda fmt: broken)
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(PayloadError, match="internal error in the jsonl normalizer"),
    ):
        normalize("jsonl", b"{}")
    assert "failed unexpectedly" in caplog.text


def test_every_format_is_sound_on_its_seed() -> None:
    for fmt, payload in [
        ("jetstream", orjson.dumps(_jetstream(_RECORD))),
        ("mastodon", orjson.dumps(_STATUS)),
        ("reddit", orjson.dumps(_THING)),
        ("feed", _RSS),
        ("jsonl", orjson.dumps(TWARC)),
    ]:
        events = normalize(fmt, payload)
        assert events
        assert_sound(events)


def test_one_line_json_array_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(orjson.dumps([TWARC, FOURCAT]))  # an API dump: the whole array on one line
    rows = list(iter_file_rows(path, "jsonl"))
    assert [p for p, _ in rows] == ["1", "2"]
    assert [normalize("jsonl", b)[0].post_id for _, b in rows] == [TWARC["id"], FOURCAT["id"]]
    lines = tmp_path / "lines.jsonl"  # a stray array line among rows is one bad row, not a document
    lines.write_bytes(b"[1, 2]\n" + orjson.dumps(TWARC) + b"\n")
    assert [p for p, _ in iter_file_rows(lines, "jsonl")] == ["1", "2"]
    empty = tmp_path / "empty.jsonl"
    for content in (b"", b"\n\n", b"\xef\xbb\xbf\n"):
        empty.write_bytes(content)
        assert list(iter_file_rows(empty, "jsonl")) == []


def test_csv_that_is_not_utf8_is_read_as_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("text,created_at\n“Café olé” – 5 €,2026-12-01T10:00:00Z\n".encode("cp1252"))
    assert csv_encoding(path) == "cp1252"
    draft = normalize("csv", next(iter(iter_file_rows(path, "csv")))[1])[0]
    assert isinstance(draft, Draft)
    assert draft.text == "“Café olé” – 5 €"
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes("\ufefftext,created_at\nCafé,2026-12-01\n".encode())
    assert csv_encoding(utf8) == "utf-8-sig"
    draft = normalize("csv", next(iter(iter_file_rows(utf8, "csv")))[1])[0]
    assert isinstance(draft, Draft)
    assert draft.text == "Café"
