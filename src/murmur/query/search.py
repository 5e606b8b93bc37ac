"""Historical search: a query over the stored posts → counts (k-anonymous) and example posts.

Counts come from the search index (``post_search``) in one statement: the total, by platform and by
language, each cell suppressed when fewer than ``k`` distinct authors back it (authors are counted in
SQL, by a hash of their pseudonymous key, and never returned). Example posts (redacted text, never an
author) are shown only when the whole match group meets ``k``. Every search is reported to the audit
seam (``murmur.query.audit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from murmur.errors import QueryError
from murmur.query.aggregate import Cell, complement
from murmur.query.ast import Query
from murmur.query.audit import audit
from murmur.query.parser import parse
from murmur.query.sql import compile_where
from murmur.store.reader import Reader

EXAMPLE_COLUMNS: tuple[str, ...] = (
    "platform",
    "post_id",
    "created_at",
    "text",
    "lang",
    "site",
    "community",
    "domains",
    "hashtags",
    "sentiment",
    "country",
    "has_link",
    "has_media",
    "is_reply",
    "is_repost",
)
"""What an example post shows. Never ``author_key``."""


def parse_time(value: str, *, option: str = "time") -> datetime:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        msg = (
            f"{option}: expected an ISO 8601 date or date-time (2026-03-01, 2026-03-01T12:00Z), got {value!r}"
        )
        raise QueryError(msg) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    """The query in canonical form."""
    k: int
    total: Cell
    by_platform: list[Cell]
    by_lang: list[Cell]
    posts: list[dict[str, Any]] = field(default_factory=list)
    """Example posts, newest first (empty when the group is under ``k`` authors)."""
    examples_withheld: bool = False
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "k": self.k,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "total": self.total.as_dict(),
            "by_platform": [c.as_dict() for c in self.by_platform],
            "by_lang": [c.as_dict() for c in self.by_lang],
            "examples_withheld": self.examples_withheld,
            "posts": [{**p, "created_at": p["created_at"].isoformat()} for p in self.posts],
        }


def time_filter(since: datetime | None, until: datetime | None, *, alias: str = "") -> tuple[str, list[Any]]:
    """``created_at`` bounds: ``since`` inclusive, ``until`` exclusive (an empty window is an error)."""
    if since is not None and until is not None and since >= until:
        msg = f"since {since.isoformat()} is not before until {until.isoformat()}: the time window is empty"
        raise QueryError(msg)
    a = f"{alias}." if alias else ""
    parts: list[str] = []
    params: list[Any] = []
    if since is not None:
        parts.append(f"{a}created_at >= ?")
        params.append(since)
    if until is not None:
        parts.append(f"{a}created_at < ?")
        params.append(until)
    return (" AND ".join(parts) or "TRUE"), params


def _cell(key: dict[str, Any], posts: int, authors: int, k: int) -> Cell:
    if posts > 0 and authors < k:
        return Cell(key, None, True)
    return Cell(key, posts, False)


def search(
    reader: Reader,
    query: str | Query,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    k: int = 5,
) -> SearchResult:
    """Run ``query`` over the stored posts (see module doc)."""
    q = parse(query) if isinstance(query, str) else query
    if limit < 0:
        msg = f"limit must be 0 or more, got {limit}"
        raise QueryError(msg)
    audit(
        "search",
        {
            "query": q.text,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
    )
    tf, params = time_filter(since, until)
    n = int(limit)
    # One statement, one scan: the matches' cheap columns are kept once; the counts come from them,
    # and the newest ``limit`` matches are fetched back by row id (only those rows are read again).
    rows = reader.query(
        f"""WITH m AS MATERIALIZED (
                SELECT rowid AS r, created_at, platform, coalesce(lang, 'und') AS lang, author_h
                FROM post_search WHERE {tf} AND {compile_where(q)}
            ),
            newest AS (SELECT r FROM m ORDER BY created_at DESC, r DESC LIMIT {n})
            SELECT 'count' AS kind, grouping(platform) AS gp, grouping(lang) AS gl, platform, lang,
                   count(*) AS posts, count(DISTINCT author_h) AS authors,
                   NULL::VARCHAR AS post_id, NULL::TIMESTAMPTZ AS created_at, NULL::TIMESTAMPTZ AS ingested_at
            FROM m GROUP BY GROUPING SETS ((), (platform), (lang))
            UNION ALL
            SELECT 'example', 1, 1, s.platform, coalesce(s.lang, 'und'), 0, 0, s.post_id, s.created_at,
                   s.ingested_at
            FROM post_search s WHERE s.rowid IN (SELECT r FROM newest)""",
        params,
    ).to_pylist()
    total = Cell({}, 0, False)
    by_platform: list[Cell] = []
    by_lang: list[Cell] = []
    found: list[tuple[datetime, str, str, datetime, str]] = []
    for row in rows:
        if row["kind"] == "example":
            found.append(
                (row["created_at"], row["platform"], row["post_id"], row["ingested_at"], row["lang"])
            )
            continue
        posts, authors = int(row["posts"]), int(row["authors"])
        if row["gp"] and row["gl"]:
            total = _cell({}, posts, authors, k)
        elif not row["gp"]:
            by_platform.append(_cell({"platform": row["platform"]}, posts, authors, k))
        else:
            by_lang.append(_cell({"lang": row["lang"]}, posts, authors, k))
    # Examples come only from cells of k authors or more (PRODUCT.md), and not from a cell hidden by
    # complementary suppression that they could list whole: with a large --limit, counting them
    # would give its count, and subtracting the lone cell's.
    shown_platforms, shown_langs = complement(by_platform), complement(by_lang)
    platforms = _example_cells(by_platform, shown_platforms, "platform", n)
    langs = _example_cells(by_lang, shown_langs, "lang", n)
    by_platform = sorted(shown_platforms, key=lambda c: (-(c.posts or 0), str(c.key["platform"])))
    by_lang = sorted(shown_langs, key=lambda c: (-(c.posts or 0), str(c.key["lang"])))
    withheld = total.suppressed
    examples = [
        (platform, post_id, ingested)
        for _, platform, post_id, ingested, lang in sorted(found, key=lambda e: e[:3], reverse=True)
        if platform in platforms and lang in langs
    ]
    if not withheld and len(examples) < len(found):  # some of the newest were in suppressed cells
        examples = _newest_shown(reader, q, tf, params, sorted(platforms), sorted(langs), n)
    shown = [] if withheld or not examples else fetch_posts(reader, examples)
    return SearchResult(str(q), k, total, by_platform, by_lang, shown, withheld, since, until)


def _example_cells(cells: list[Cell], shown: list[Cell], dim: str, limit: int) -> set[str]:
    """The keys of the cells examples may come from: those of ``k`` authors or more, less the one
    ``complement`` hides (``shown``: the cells after it) when the examples could list it whole
    (``limit`` or fewer posts)."""
    hidden = [d.suppressed and not c.suppressed for c, d in zip(cells, shown, strict=True)]
    return {
        c.key[dim]
        for c, h in zip(cells, hidden, strict=True)
        if not c.suppressed and (not h or (c.posts or 0) > limit)
    }


def _newest_shown(
    reader: Reader,
    q: Query,
    tf: str,
    params: list[Any],
    platforms: list[str],
    langs: list[str],
    limit: int,
) -> list[tuple[str, str, datetime]]:
    """The newest ``limit`` matches in the given platform and language cells (a second scan, only
    when the newest matches included posts of suppressed cells)."""
    if not platforms or not langs or limit <= 0:
        return []
    p_marks = ", ".join("?" for _ in platforms)
    l_marks = ", ".join("?" for _ in langs)
    rows = reader.query(
        f"""SELECT platform, post_id, ingested_at FROM post_search
            WHERE {tf} AND {compile_where(q)}
              AND platform IN ({p_marks}) AND coalesce(lang, 'und') IN ({l_marks})
            ORDER BY created_at DESC, platform DESC, post_id DESC LIMIT {int(limit)}""",
        [*params, *platforms, *langs],
    ).to_pylist()
    return [(r["platform"], r["post_id"], r["ingested_at"]) for r in rows]


POINT_QUERIES_UP_TO = 64
"""``fetch_posts`` looks up at most this many posts one by one; more in one join."""


def fetch_posts(reader: Reader, keys: Sequence[tuple[str, str, datetime]]) -> list[dict[str, Any]]:
    """The example columns of the posts with these (platform, post_id, ingested_at) keys, in the order
    given. ``ingested_at`` grows with every write, so DuckDB's zone maps find a post's row group
    without a scan of the whole table: up to ``POINT_QUERIES_UP_TO`` keys, one point query each
    (UNION ALL: a few row groups read, however old the posts and large the store); more keys join
    as one VALUES list over the row groups of their ``ingested_at`` range (one point query per post
    took 0.8 s for 300 posts and 20 s for 1,500 on a 5,000-post store; the join takes 0.06 s and
    0.24 s)."""
    if not keys:
        return []
    params: list[Any] = []
    for platform, post_id, ingested_at in keys:
        params += [ingested_at, platform, post_id]
    if len(keys) <= POINT_QUERIES_UP_TO:
        cols = ", ".join(
            c if c != "lang" else "coalesce(lang, lang_declared) AS lang" for c in EXAMPLE_COLUMNS
        )
        one = f"(SELECT {cols} FROM posts WHERE ingested_at = ? AND platform = ? AND post_id = ?)"
        table = reader.query(" UNION ALL ".join(one for _ in keys), params)
    else:
        cols = ", ".join(
            f"p.{c}" if c != "lang" else "coalesce(p.lang, p.lang_declared) AS lang" for c in EXAMPLE_COLUMNS
        )
        values = ", ".join("(?::TIMESTAMPTZ, ?, ?)" for _ in keys)
        params += [min(k[2] for k in keys), max(k[2] for k in keys)]
        table = reader.query(
            f"SELECT {cols} FROM posts p SEMI JOIN (VALUES {values}) AS k(ingested_at, platform, post_id) "
            "ON p.ingested_at = k.ingested_at AND p.platform = k.platform AND p.post_id = k.post_id "
            "WHERE p.ingested_at BETWEEN ? AND ?",
            params,
        )
    found = {(row["platform"], row["post_id"]): row for row in table.to_pylist()}
    return [found[(p, i)] for p, i, _ in keys if (p, i) in found]
