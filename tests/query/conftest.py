"""A store holding every real post (~11k), indexed the way ``murmur run`` indexes them, shared by
the query tests of one session."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from murmur.query.index import Doc, doc_of
from murmur.query.live import batch_hooks
from murmur.store import Store
from murmur.testing import has_shared_data
from murmur.text import tokenize
from murmur.types import Post
from tests.query.strategies import Vocabulary


@dataclass
class RealStore:
    store: Store
    posts: tuple[Post, ...]
    docs: list[Doc]
    vocab: Vocabulary

    def __repr__(self) -> str:
        return f"RealStore({len(self.posts)} posts)"

    def sql_ids(self, where: str) -> set[tuple[str, str]]:
        rows = self.store.conn.execute(f"SELECT platform, post_id FROM post_search WHERE {where}").fetchall()
        return {(str(p), str(i)) for p, i in rows}


def _vocabulary(docs: list[Doc]) -> Vocabulary:
    counts: Counter[str] = Counter()
    grams: Counter[tuple[str, ...]] = Counter()
    for d in docs:
        toks = d.st.split()
        counts.update(set(toks))
        grams.update(pairwise(toks))
        grams.update(zip(toks, toks[1:], toks[2:], strict=False))
    ranked = [w for w, _ in counts.most_common()]
    # Common, mid-frequency and rare words, plus every word of the posts made for folding.
    words = ranked[:40] + ranked[40:3000:15] + ranked[-400::8]
    words += [w for w in ("cafe", "creme", "strasse", "koln", "nino", "istanbul", "οδοσ") if w in counts]
    from tests.query.realdata import MADE_UP

    words += sorted({w for _, text in MADE_UP[6:] for w in tokenize(text)})  # marks, ZWNJ, IVS
    phrases = [g for g, n in grams.most_common(4000)[::10] if n >= 2] + [
        g for g, n in grams.items() if n == 1
    ][:150:3]
    keys = Counter(k for d in docs for k in d.keys)
    fields = sorted({tuple(k.split("=", 1)) for k, _ in keys.most_common(400)})
    fields += sorted({tuple(k.split("=", 1)) for k in keys if k.startswith("hashtag=") and not k.isascii()})
    fields += [("lang", "xx"), ("site", "example.invalid"), ("hashtag", "nothingmatches")]
    return Vocabulary(words=words, phrases=phrases, fields=[(f[0], f[1]) for f in fields])


_CURRENT: list[RealStore] = []


def current() -> RealStore:
    """The session's real store, for strategies drawn inside a test that asked for ``real_store``."""
    return _CURRENT[0]


@pytest.fixture(scope="session")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStore]:
    if not has_shared_data():
        pytest.skip("needs ../shared/data (real payloads and lingua sentences); set MURMUR_SHARED")
    from tests.query.realdata import real_posts

    base: Path = tmp_path_factory.mktemp("query-real")
    posts = real_posts(str(base))
    store = Store.open(base / "store.duckdb")
    (hook,) = batch_hooks(store)
    for i in range(0, len(posts), 3000):
        batch = posts[i : i + 3000]
        writer = hook(batch)
        store.write(posts=batch, extras=[writer] if writer else [])
    docs = [doc_of(p) for p in posts]
    _CURRENT.append(RealStore(store, posts, docs, _vocabulary(docs)))
    try:
        yield _CURRENT[0]
    finally:
        _CURRENT.clear()
        store.close()
