"""Aggregates with k-anonymity: every cell backed by fewer than ``k`` distinct authors is suppressed.

This is the one place that counts posts for people to see (CLI, API, dashboard and exports all call
it), so the rule cannot be forgotten by one of them. Author keys are counted, never returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from murmur.errors import QueryError
from murmur.query.audit import audit
from murmur.store.reader import Reader

_DIMENSIONS: dict[str, str] = {
    "platform": "platform",
    "lang": "coalesce(lang, lang_declared, 'und')",
    "sentiment": "coalesce(sentiment, 'unknown')",
    "country": "coalesce(country, 'unknown')",
    "site": "coalesce(site, 'unknown')",
    "community": "coalesce(community, 'unknown')",
    "day": "date_trunc('day', created_at)",
    "hour": "date_trunc('hour', created_at)",
}
_LIST_DIMENSIONS: dict[str, str] = {"hashtag": "hashtags", "domain": "domains", "term": "terms"}
"""Breakdowns over a list column: a post counts once under each of its hashtags (domains, terms)."""
_OPEN_DIMENSIONS = frozenset({"hashtag", "domain", "term", "community", "site"})
"""Breakdowns whose labels are whatever people wrote (not a fixed list such as languages or days): the
label of a cell under ``k`` authors, a rare hashtag or term, a small community's name, is itself
something fewer than ``k`` people wrote, so such cells are not listed one by one (``Cell.hidden``)."""
_SAFE_NAME = re.compile(r"^[a-z_]+$")


@dataclass(frozen=True, slots=True)
class Cell:
    key: dict[str, Any]
    posts: int | None
    """None when suppressed."""
    suppressed: bool
    hidden: int = 0
    """For the one cell that stands for an open breakdown's suppressed cells (its key's values are
    None): how many cells it stands for. Their labels are not returned."""

    def as_dict(self) -> dict[str, Any]:
        extra = {"hidden": self.hidden} if self.hidden else {}
        return {**self.key, "posts": self.posts, "suppressed": self.suppressed, **extra}


def complement(cells: list[Cell]) -> list[Cell]:
    """Complementary suppression for a breakdown whose cells partition a total (each post in exactly
    one cell): with exactly one cell suppressed, the total minus the shown cells would be its count,
    so the smallest shown cell is suppressed as well. Two or more suppressed cells give away only
    their sum. Returns the cells in the same order."""
    if sum(c.suppressed for c in cells) != 1:
        return cells
    shown = [c for c in cells if not c.suppressed]
    if not shown:
        return cells
    smallest = min(shown, key=lambda c: (c.posts or 0, repr(sorted(c.key.items()))))
    return [Cell(c.key, None, True) if c is smallest else c for c in cells]


def grouped_counts(
    reader: Reader,
    by: Sequence[str],
    *,
    k: int,
    where: str = "TRUE",
    params: Sequence[Any] = (),
    table: str = "posts",
    audited: bool = True,
) -> list[Cell]:
    """Post counts grouped by ``by`` (names from ``_DIMENSIONS``), cells under ``k`` authors suppressed
    (and, grouped by one dimension that gives each post one cell, a second one where a lone
    suppressed cell could be worked out from the total: ``complement``); largest first, then the
    suppressed cells, ordered by their keys only. In a breakdown by an open dimension (hashtag,
    domain, term, community, site) the suppressed cells are one last cell, with no labels, that
    says how many they are (``Cell.hidden``). ``audited=False``: for a caller that records
    its own audit event (``store_stats``)."""
    if audited:
        audit("counts", {"by": list(by), "table": table})
    known = {**_DIMENSIONS, **_LIST_DIMENSIONS}
    unknown = [d for d in by if d not in known]
    if unknown:
        msg = f"cannot group by {unknown}; known breakdowns: {sorted(known)}"
        raise QueryError(msg)
    lists = [d for d in by if d in _LIST_DIMENSIONS]
    if len(lists) > 1:
        msg = f"group by at most one of {sorted(_LIST_DIMENSIONS)} at a time, got {lists}"
        raise QueryError(msg)
    if not _SAFE_NAME.match(table):
        msg = f"bad table name {table!r}"
        raise QueryError(msg)
    source = f"{table} WHERE {where}"
    if lists:
        column = _LIST_DIMENSIONS[lists[0]]
        source = f"(SELECT *, unnest({column}) AS __item FROM {table} WHERE {where}) AS t"
    select = ", ".join(f"{'__item' if d in _LIST_DIMENSIONS else _DIMENSIONS[d]} AS {d}" for d in by)
    group = ", ".join(str(i + 1) for i in range(len(by)))
    sql = (
        f"SELECT {select + ', ' if select else ''}count(*) AS posts, count(DISTINCT author_key) AS authors "
        f"FROM {source}" + (f" GROUP BY {group} ORDER BY {group}" if by else "")
    )
    rows = reader.query(sql, params).to_pylist()
    cells: list[Cell] = []
    for row in rows:
        authors = int(row.pop("authors"))
        posts = int(row.pop("posts"))
        key = {d: row[d] for d in by}
        if authors < k and posts > 0:
            cells.append(Cell(key, None, True))
        else:
            cells.append(Cell(key, posts, False))
    if len(by) == 1 and by[0] in _DIMENSIONS:  # one cell per post: the cells add up to the total
        cells = complement(cells)
    # Largest first, suppressed cells last (by key): ranked by their hidden counts, their place
    # between two shown counts would bound them, and a "top 10" cut would say which are large.
    cells.sort(key=lambda c: (c.suppressed, -(c.posts or 0)))
    if _OPEN_DIMENSIONS.intersection(by):
        hidden = sum(c.suppressed for c in cells)
        cells = [c for c in cells if not c.suppressed]
        if hidden:
            cells.append(Cell(dict.fromkeys(by), None, True, hidden))
    return cells


def store_stats(reader: Reader, *, k: int) -> dict[str, Any]:
    """What ``murmur stats`` shows: totals, counts by platform and by language, quarantine, cursors."""
    audit("stats", {})
    total = grouped_counts(reader, [], k=k, audited=False)
    quarantine = reader.query("SELECT count(*) AS n FROM quarantine").to_pylist()[0]["n"]
    reasons = reader.query(
        "SELECT regexp_replace(reason, '[0-9]+', 'N', 'g') AS reason, count(*) AS n FROM quarantine "
        "GROUP BY 1 ORDER BY n DESC LIMIT 10"
    ).to_pylist()
    cursors = reader.query(
        "SELECT source_id, position, updated_at FROM cursors ORDER BY source_id"
    ).to_pylist()
    suppressed = bool(total and total[0].suppressed)
    # The first and last days that meet k: the first and last post's own times are each one
    # person's (when they posted, to the second), like a day with fewer than k authors.
    span = reader.query(
        "SELECT min(day) AS first, max(day) AS last FROM (SELECT date_trunc('day', created_at) AS day "
        "FROM posts GROUP BY 1 HAVING count(DISTINCT author_key) >= ?)",
        [k],
    ).to_pylist()[0]
    return {
        "k": k,
        "posts": total[0].posts if total else 0,
        "posts_suppressed": suppressed,
        "first_post_at": span["first"].isoformat() if span["first"] else None,
        "last_post_at": span["last"].isoformat() if span["last"] else None,
        "by_platform": [c.as_dict() for c in grouped_counts(reader, ["platform"], k=k, audited=False)],
        "by_language": [c.as_dict() for c in grouped_counts(reader, ["lang"], k=k, audited=False)],
        "quarantined": int(quarantine),
        "quarantine_reasons": reasons,
        "cursors": [{**c, "updated_at": c["updated_at"].isoformat()} for c in cursors],
    }
