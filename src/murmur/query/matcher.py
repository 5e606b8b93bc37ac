"""Live matching: every saved monitor evaluated on every post as it is ingested, without running
every query on every post.

How (``MonitorMatcher``):

1. every needle of every monitor (``Term.needle``: ``" word "``, ``" two words "``, ``" prefix"``) goes
   into one Aho–Corasick automaton; one pass over a post's search text finds all needles it contains;
2. each monitor has *anchors*, a cheap necessary condition: needles or field keys of which at least one
   must be present for the monitor to match at all (an AND anchors on its most selective child, an OR
   on the union of its children's anchors, a NOT on nothing);
3. only the monitors whose anchors the post holds are evaluated, by a closure compiled from the query
   tree that reads the needles found in step 1, the post's field keys, and, for NEAR, runs the same
   regular expression that historical search gives DuckDB.

Every query the parser accepts has anchors (it must require something), so no monitor runs on every post.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import ahocorasick

from murmur.query.ast import And, Field, Near, Node, Not, Query, Term
from murmur.query.index import Doc, doc_of
from murmur.types import Post


@dataclass(slots=True)
class _Ctx:
    found: set[int]
    keys: frozenset[str]
    st: str


_Eval = Callable[[_Ctx], bool]

_FIELD_COST = {"platform": 0.6, "lang": 0.4, "has": 0.5, "is": 0.5, "sentiment": 0.4, "country": 0.1}
"""Rough share of posts a field test keeps (site and hashtag: 0.01): used only to pick anchors."""


def _term_cost(t: Term) -> float:
    letters = sum(len(x) for x in t.tokens)
    cost = 1.0 / (1 + letters) ** 2
    cost /= 20.0 ** (len(t.tokens) - 1)
    return cost * 4 if t.prefix else cost


@dataclass(frozen=True, slots=True)
class _Anchors:
    needles: frozenset[str]
    keys: frozenset[str]
    cost: float


def _anchors(node: Node) -> _Anchors | None:
    """A set of needles/keys one of which every matching post holds (None: no such set)."""
    if isinstance(node, Term):
        return _Anchors(frozenset({node.needle}), frozenset(), _term_cost(node))
    if isinstance(node, Field):
        return _Anchors(frozenset(), frozenset({node.key}), _FIELD_COST.get(node.name, 0.01))
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        sides = [_union([_anchors(t) for t in side]) for side in (node.left, node.right)]
        return min((s for s in sides if s is not None), key=lambda a: a.cost, default=None)
    if isinstance(node, And):
        options = [a for a in (_anchors(c) for c in node.children) if a is not None]
        return min(options, key=lambda a: a.cost, default=None)
    return _union([_anchors(c) for c in node.children])


def _union(parts: Sequence[_Anchors | None]) -> _Anchors | None:
    if not parts or any(p is None for p in parts):
        return None
    real = [p for p in parts if p is not None]
    return _Anchors(
        frozenset().union(*(p.needles for p in real)),
        frozenset().union(*(p.keys for p in real)),
        sum(p.cost for p in real),
    )


class _Compiler:
    """Turns query trees into closures over a ``_Ctx``, numbering needles as it goes."""

    def __init__(self) -> None:
        self.needles: dict[str, int] = {}

    def nid(self, needle: str) -> int:
        return self.needles.setdefault(needle, len(self.needles))

    def compile(self, node: Node) -> _Eval:
        if isinstance(node, Term):
            nid = self.nid(node.needle)
            return lambda c: nid in c.found
        if isinstance(node, Field):
            key = node.key
            return lambda c: key in c.keys
        if isinstance(node, Not):
            inner = self.compile(node.child)
            return lambda c: not inner(c)
        if isinstance(node, Near):
            left = frozenset(self.nid(t.needle) for t in node.left)
            right = frozenset(self.nid(t.needle) for t in node.right)
            search = re.compile(node.pattern).search
            return lambda c: (
                not left.isdisjoint(c.found) and not right.isdisjoint(c.found) and search(c.st) is not None
            )
        parts = tuple(self.compile(ch) for ch in node.children)
        if isinstance(node, And):
            if len(parts) == 2:
                a, b = parts
                return lambda c: a(c) and b(c)
            return lambda c: all(p(c) for p in parts)
        if len(parts) == 2:
            a, b = parts
            return lambda c: a(c) or b(c)
        return lambda c: any(p(c) for p in parts)


class MonitorMatcher:
    """Matches posts against many named queries at once (see module doc).

    ``match(post)`` returns the names of the monitors the post matches, in the order they were given.
    """

    def __init__(self, monitors: Iterable[tuple[str, Query]]) -> None:
        compiler = _Compiler()
        self.names: list[str] = []
        self._evals: list[_Eval] = []
        by_needle: dict[int, list[int]] = {}
        by_key: dict[str, list[int]] = {}
        self._always: list[int] = []
        for i, (name, query) in enumerate(monitors):
            self.names.append(name)
            self._evals.append(compiler.compile(query.root))
            anchors = _anchors(query.root)
            if anchors is None:  # the parser refuses such queries; stay correct if built by hand
                self._always.append(i)
                continue
            for needle in anchors.needles:
                by_needle.setdefault(compiler.nid(needle), []).append(i)
            for key in anchors.keys:
                by_key.setdefault(key, []).append(i)
        self._by_needle = {k: tuple(v) for k, v in by_needle.items()}
        self._by_key = {k: tuple(v) for k, v in by_key.items()}
        self._automaton: ahocorasick.Automaton | None = None
        if compiler.needles:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for needle, nid in compiler.needles.items():
                automaton.add_word(needle, nid)
            automaton.make_automaton()
            self._automaton = automaton

    def __len__(self) -> int:
        return len(self.names)

    def match_doc(self, doc: Doc) -> list[str]:
        found = {nid for _, nid in self._automaton.iter(doc.st)} if self._automaton is not None else set()
        candidates: set[int] = set(self._always)
        by_needle = self._by_needle
        for nid in found:
            hit = by_needle.get(nid)
            if hit:
                candidates.update(hit)
        by_key = self._by_key
        for key in doc.keys:
            hit = by_key.get(key)
            if hit:
                candidates.update(hit)
        if not candidates:
            return []
        ctx = _Ctx(found, doc.keys, doc.st)
        evals = self._evals
        names = self.names
        return [names[i] for i in sorted(candidates) if evals[i](ctx)]

    def match(self, post: Post) -> list[str]:
        return self.match_doc(doc_of(post))

    def match_batch(self, posts: Sequence[Post]) -> list[list[str]]:
        return [self.match_doc(doc_of(p)) for p in posts]

    def match_docs(self, docs: Sequence[Doc]) -> list[list[str]]:
        return [self.match_doc(d) for d in docs]


def matches(query: Query, post: Post | Doc) -> bool:
    """Whether one query matches one post (the live semantics, without an index of monitors)."""
    doc = post if isinstance(post, Doc) else doc_of(post)
    return bool(MonitorMatcher([("q", query)]).match_doc(doc))
