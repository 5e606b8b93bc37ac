"""Live matching: every saved monitor evaluated on every post as it is ingested, without running
every query on every post.

How (``MonitorMatcher``):

1. a post's search text is split into its tokens (which answers every one-word term), and one
   Aho–Corasick pass over it finds every phrase and wildcard needle of every monitor it contains
   (``Term.needle``: ``" two words "``, ``" prefix"``); a needle "in" the post is exactly the
   substring test the SQL side runs;
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
    found: set[str]
    """The post's tokens, plus every phrase/wildcard needle it contains."""
    keys: frozenset[str]
    st: str


_Eval = Callable[[_Ctx], bool]

_FIELD_COST = {
    "platform": 0.3,
    "lang": 0.3,
    "has": 0.3,
    "is": 0.2,
    "sentiment": 0.35,
    "country": 0.05,
    "site": 0.01,
}
"""Rough share of posts a field test keeps (hashtag: 0.005): used only to pick anchors."""


def needle_key(t: Term) -> str:
    """How the matcher names a needle: a one-word term by its token (found by splitting the search
    text), anything else by its needle string (found by the automaton; it has spaces, a token has
    none, so the two cannot collide)."""
    return t.tokens[0] if len(t.tokens) == 1 and not t.prefix else t.needle


def _term_cost(t: Term) -> float:
    """Rough share of posts holding a term: shorter words are commoner, phrases rarer."""
    letters = sum(len(x) for x in t.tokens)
    cost = 0.3 / (1 + letters) ** 2
    cost /= 20.0 ** (len(t.tokens) - 1)
    return cost * 4 if t.prefix else cost


@dataclass(frozen=True, slots=True)
class _Anchors:
    needles: frozenset[str]
    """Needle keys (``needle_key``)."""
    keys: frozenset[str]
    """Field keys."""
    cost: float


def _anchors(node: Node) -> _Anchors | None:
    """A set of needles/keys one of which every matching post holds (None: no such set)."""
    if isinstance(node, Term):
        return _Anchors(frozenset({needle_key(node)}), frozenset(), _term_cost(node))
    if isinstance(node, Field):
        return _Anchors(frozenset(), frozenset({node.key}), _FIELD_COST.get(node.name, 0.005))
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


def _all(checks: list[_Eval]) -> _Eval:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda c: a(c) and b(c)
    parts = tuple(checks)
    return lambda c: all(p(c) for p in parts)


def _any(checks: list[_Eval]) -> _Eval:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda c: a(c) or b(c)
    parts = tuple(checks)
    return lambda c: any(p(c) for p in parts)


class _Compiler:
    """Turns query trees into closures over a ``_Ctx``, collecting the needles the automaton must find."""

    def __init__(self) -> None:
        self.complex_needles: set[str] = set()

    def key(self, t: Term) -> str:
        k = needle_key(t)
        if len(t.tokens) > 1 or t.prefix:
            self.complex_needles.add(k)
        return k

    def compile(self, node: Node) -> _Eval:
        if isinstance(node, Term):
            k = self.key(node)
            return lambda c: k in c.found
        if isinstance(node, Field):
            fk = node.key
            return lambda c: fk in c.keys
        if isinstance(node, Not):
            inner = self.compile(node.child)
            return lambda c: not inner(c)
        if isinstance(node, Near):
            left = frozenset(self.key(t) for t in node.left)
            right = frozenset(self.key(t) for t in node.right)
            search = re.compile(node.pattern).search
            return lambda c: (
                not left.isdisjoint(c.found) and not right.isdisjoint(c.found) and search(c.st) is not None
            )
        # AND / OR: test all plain terms, all fields (and, under AND, all excluded terms) with one set
        # operation each, before any nested part.
        terms = frozenset(self.key(ch) for ch in node.children if isinstance(ch, Term))
        fields = frozenset(ch.key for ch in node.children if isinstance(ch, Field))
        checks: list[_Eval] = []
        if isinstance(node, And):
            excluded = frozenset(
                self.key(ch.child)
                for ch in node.children
                if isinstance(ch, Not) and isinstance(ch.child, Term)
            )
            rest = [
                ch
                for ch in node.children
                if not isinstance(ch, Term | Field)
                and not (isinstance(ch, Not) and isinstance(ch.child, Term))
            ]
            if terms:
                checks.append(lambda c: terms <= c.found)
            if fields:
                checks.append(lambda c: fields <= c.keys)
            if excluded:
                checks.append(lambda c: excluded.isdisjoint(c.found))
            return _all(checks + [self.compile(ch) for ch in rest])
        rest = [ch for ch in node.children if not isinstance(ch, Term | Field)]
        if terms:
            checks.append(lambda c: not terms.isdisjoint(c.found))
        if fields:
            checks.append(lambda c: not fields.isdisjoint(c.keys))
        return _any(checks + [self.compile(ch) for ch in rest])


class MonitorMatcher:
    """Matches posts against many named queries at once (see module doc).

    ``match(post)`` returns the names of the monitors the post matches, in the order they were given.
    With ``indexed=False`` every monitor is evaluated on every post (the baseline the index is
    measured and tested against).
    """

    def __init__(self, monitors: Iterable[tuple[str, Query]], *, indexed: bool = True) -> None:
        compiler = _Compiler()
        self.names: list[str] = []
        self._evals: list[_Eval] = []
        by_needle: dict[str, list[int]] = {}
        by_key: dict[str, list[int]] = {}
        self._always: list[int] = []
        for i, (name, query) in enumerate(monitors):
            self.names.append(name)
            self._evals.append(compiler.compile(query.root))
            anchors = _anchors(query.root) if indexed else None
            if anchors is None:  # the parser refuses such queries; stay correct if built by hand
                self._always.append(i)
                continue
            for needle in anchors.needles:
                by_needle.setdefault(needle, []).append(i)
            for key in anchors.keys:
                by_key.setdefault(key, []).append(i)
        self._by_needle = {k: tuple(v) for k, v in by_needle.items()}
        self._by_key = {k: tuple(v) for k, v in by_key.items()}
        self._automaton: ahocorasick.Automaton | None = None
        if compiler.complex_needles:
            automaton = ahocorasick.Automaton()
            for needle in sorted(compiler.complex_needles):
                automaton.add_word(needle, needle)
            automaton.make_automaton()
            self._automaton = automaton

    def __len__(self) -> int:
        return len(self.names)

    def match_doc(self, doc: Doc) -> list[str]:
        st = doc.st
        found = set(st.split())
        if self._automaton is not None:
            found.update([needle for _, needle in self._automaton.iter(st)])
        candidates: set[int] = set(self._always)
        by_needle = self._by_needle
        for needle in by_needle.keys() & found:
            candidates.update(by_needle[needle])
        by_key = self._by_key
        for key in by_key.keys() & doc.keys:
            candidates.update(by_key[key])
        if not candidates:
            return []
        ctx = _Ctx(found, doc.keys, st)
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
