"""Hypothesis strategies for query trees, drawn from a vocabulary (real or made up).

Every generated tree is one the parser accepts: it requires something (a term, phrase, NEAR or
field) at the top and in every OR branch, and NEAR operands are terms or OR-lists of terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import strategies as st

from murmur.query.ast import And, Field, Near, Node, Not, Or, Term, to_string
from murmur.query.parser import MIN_PREFIX
from murmur.text import is_segmented_char

T = TypeVar("T")


@dataclass(frozen=True)
class Vocabulary:
    words: Sequence[str]
    """Folded single tokens."""
    phrases: Sequence[tuple[str, ...]]
    """Runs of folded tokens seen together."""
    fields: Sequence[tuple[str, str]]
    """(field name, folded value) pairs, e.g. ("lang", "de"), ("site", "nytimes.com")."""


def _pick(items: Sequence[T]) -> st.SearchStrategy[T]:
    """Like ``sampled_from``, with a short repr (vocabularies are long)."""
    seq = list(items)
    return st.integers(0, len(seq) - 1).map(lambda i: seq[i])


def _prefixes(words: Sequence[str]) -> list[str]:
    out = []
    for w in words:
        if is_segmented_char(w[0]):
            out.append(w[:1])
        elif len(w) >= MIN_PREFIX:
            out.append(w[: max(MIN_PREFIX, (len(w) + 1) // 2)])
    return out or ["ab"]


def terms(v: Vocabulary) -> st.SearchStrategy[Term]:
    words = _pick(v.words)
    prefixes = _pick(_prefixes(list(v.words)))
    word = words.map(lambda w: Term((w,)))
    wildcard = prefixes.map(lambda p: Term((p,), prefix=True))
    options: list[st.SearchStrategy[Term]] = [word, word, wildcard]
    if v.phrases:
        phrase = _pick(v.phrases).map(lambda p: Term(tuple(p), phrase=True))
        options.append(phrase)
        long_last = [p for p in v.phrases if len(p[-1]) >= MIN_PREFIX]
        if long_last:
            options.append(
                _pick(long_last).map(
                    lambda p: Term(
                        (*p[:-1], p[-1][: max(MIN_PREFIX, len(p[-1]) - 1)]), prefix=True, phrase=True
                    )
                )
            )
    return st.one_of(options)


def fields(v: Vocabulary) -> st.SearchStrategy[Field]:
    return _pick(v.fields).map(lambda f: Field(f[0], f[1]))


def nears(v: Vocabulary) -> st.SearchStrategy[Near]:
    side = st.lists(terms(v), min_size=1, max_size=3).map(tuple)
    return st.builds(
        Near,
        left=side,
        right=side,
        distance=st.integers(0, 8),
        ordered=st.booleans(),
    )


def queries(v: Vocabulary, max_leaves: int = 8) -> st.SearchStrategy[Node]:
    """Trees that require something (see module doc)."""
    leaf: st.SearchStrategy[Node] = st.one_of(terms(v), terms(v), fields(v), nears(v))

    def extend(positive: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        anything = st.one_of(positive, positive.map(lambda n: Not(n)))
        both = st.tuples(positive, st.lists(anything, min_size=1, max_size=3))
        conj = both.map(lambda pair: And((pair[0], *pair[1])))
        disj = st.lists(positive, min_size=2, max_size=4).map(lambda xs: Or(tuple(xs)))
        return st.one_of(conj, disj)

    return st.recursive(leaf, extend, max_leaves=max_leaves)


SPACES: tuple[str, ...] = (" ", " ", " ", "\u3000", "\u00a0", "\t", "\u2003")
"""What separates the words of a printed query: mostly a space, sometimes the ideographic space of a
Japanese IME, a pasted no-break space, a tab or an em space."""


def printed(trees: st.SearchStrategy[Node]) -> st.SearchStrategy[str]:
    """Trees printed as a user would type them (``to_string``), with any of ``SPACES`` between words."""
    return st.tuples(trees, st.sampled_from(SPACES)).map(lambda p: to_string(p[0]).replace(" ", p[1]))
