"""The learned combiner of language identification's second opinion (``murmur.enrich.langid``,
steps 2 and 3): the candidate languages of the texts CLD2 is unsure of, one row of ``FEATURES`` per
candidate built for a whole batch with array operations, and two linear scorers (``Combiner``) whose
softmax over a text's candidates picks its language. Trained by ``python -m murmur.enrich.train_langid``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pycld2

from murmur.enrich.langid_cld2 import CONFUSABLE_GROUPS, UND, Cld2Answer, iso_code, lingua_codes
from murmur.errors import ModelError

FEATURES: tuple[str, ...] = (
    "cld_pct",  # CLD2's percent of the text in this language (0-1)
    "cld_score",  # CLD2's normalized score for it (/1000, at most 2)
    "cld_top",  # CLD2's first answer
    "cld_top_reliable",  # ... and CLD2 calls it reliable
    "lid_p",  # langid.py's probability
    "lid_logp",  # log10 of it (floored at 1e-4)
    "lid_top",  # langid.py's first answer
    "ling_p",  # lingua's confidence among the candidates (second stage only)
    "ling_logp",
    "ling_top",
    "ling_unknown",  # a language lingua does not know (second stage only)
    "short_cld",  # cld_pct, lid_p, ling_p again for texts under 40 characters
    "short_lid",
    "short_ling",
    "group_only",  # no detector proposed it: it is only in a proposed language's confusable group
)
"""Features of one candidate language of one text; a linear score per candidate, softmax per text."""

LANG_FEATURES: tuple[str, ...] = ("bias", "cld_pct", "lid_p", "ling_p")
"""Per-language weights on top of ``FEATURES`` for the languages the combiner was trained on."""

MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "models" / "langid_combiner.npz"
SHORT_CHARS = 40


F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]


def _group(code: str) -> frozenset[str]:
    out = _GROUPS.get(code)
    if out is None:
        out = frozenset({code}.union(*(g for g in CONFUSABLE_GROUPS if code in g)))
        _GROUPS[code] = out
    return out


_GROUPS: dict[str, frozenset[str]] = {}


_LOG_FLOOR = math.log10(1e-4) + 4.0


def _logp(p: F64) -> F64:
    """``log10(max(p, 1e-4)) + 4`` of each value, by ``math.log10`` (the values the combiner was
    trained on: numpy's log10 may differ in the last bit); most are the floor (no probability)."""
    out = np.full(p.shape, _LOG_FLOOR)
    above = p > 1e-4
    out[above] = np.array(list(map(math.log10, p[above].tolist()))) + 4.0
    return out


class CodeTable:
    """Every language code a detector can name, sorted (a text's candidates are in this order), each
    with its confusable group as a mask: so the candidates and their features are built for a whole
    batch with array operations, not row by row."""

    def __init__(self, codes: Iterable[str], lid_classes: Sequence[str]) -> None:
        self.codes: tuple[str, ...] = tuple(sorted({UND, *codes, *(iso_code(c) for c in lid_classes)}))
        self.index = {c: i for i, c in enumerate(self.codes)}
        self.none = len(self.codes)  # padding: no language (its group is empty)
        groups = [[self.index[g] for g in _group(c)] if c != UND else [] for c in self.codes]
        width = max(map(len, groups))
        # each code's confusable group (itself included), padded with ``none``
        self.members = np.array([g + [self.none] * (width - len(g)) for g in [*groups, []]], dtype=np.intp)
        self.lid_classes = list(lid_classes)
        self.lid_code = np.array([self.index[iso_code(c)] for c in lid_classes], dtype=np.intp)
        known = lingua_codes()
        self.lingua_unknown = np.array([0.0 if c in known else 1.0 for c in self.codes])

    @classmethod
    def default(cls, lid_classes: Sequence[str]) -> CodeTable:
        """CLD2's languages, langid.py's and the confusable groups'."""
        cld = (iso_code(code) for _, code in pycld2.LANGUAGES)
        return cls([*cld, *(c for g in CONFUSABLE_GROUPS for c in g)], lid_classes)

    def covering(self, codes: Iterable[str]) -> CodeTable:
        """This table, or a larger one if ``codes`` holds a code it lacks (none of CLD2's does)."""
        missing = set(codes).difference(self.index)
        return CodeTable([*self.codes, *missing], self.lid_classes) if missing else self


@dataclass(frozen=True)
class Candidates:
    """The candidate languages of a batch of routed texts and one row of ``FEATURES`` per candidate:
    a text's candidates are CLD2's languages and langid.py's top 3, each with its confusable group,
    in code order. Rows of one text are consecutive (``sizes``); ``text``/``code``: each row's text
    (0 to n-1) and language (in ``table``). lingua's columns are zero until ``with_lingua``."""

    x: F64
    text: Ints
    code: Ints
    sizes: Ints
    short: F64  # per row: 1.0 if its text is under SHORT_CHARS characters, else 0.0
    table: CodeTable

    @cached_property
    def starts(self) -> list[int]:
        """Each text's first row."""
        return [0, *np.cumsum(self.sizes)[:-1].tolist()]

    def cands(self, j: int) -> tuple[str, ...]:
        """The candidates of text ``j``."""
        start = self.starts[j]
        return tuple(self.table.codes[c] for c in self.code[start : start + int(self.sizes[j])].tolist())

    def select(self, texts: Sequence[int]) -> Candidates:
        """The rows of ``texts`` (ascending), renumbered 0 to len(texts)-1."""
        keep = np.zeros(len(self.sizes), dtype=bool)
        keep[list(texts)] = True
        rows = np.repeat(keep, self.sizes)
        text = (np.cumsum(keep) - 1)[self.text[rows]]
        return Candidates(self.x[rows], text, self.code[rows], self.sizes[keep], self.short[rows], self.table)

    def with_lingua(self, ling: Sequence[dict[str, float]]) -> Candidates:
        """The second stage's rows: lingua's confidence values (per text, among its candidates)."""
        index, none = self.table.index, self.table.none
        values = [(j, index.get(c, none), v) for j, vs in enumerate(ling) for c, v in vs.items()]
        text, code, value = np.array(values, dtype=np.float64).reshape(-1, 3).T
        gtop = np.array([index.get(max(vs, key=vs.__getitem__), none) if vs else none for vs in ling])
        x = self.x.copy()
        at, found = _Rows(self.text, self.code, none).find(text.astype(np.intp), code.astype(np.intp))
        x[at, 7] = value[found]  # a language that is no candidate has no row
        x[:, 8] = _logp(x[:, 7])
        x[:, 9] = self.code == gtop[self.text]
        x[:, 10] = self.table.lingua_unknown[self.code]
        x[:, 13] = self.short * x[:, 7]
        return Candidates(x, self.text, self.code, self.sizes, self.short, self.table)


class _Rows:
    """Finds the row of (text, code) pairs among a batch's candidate rows (sorted by text, then code):
    a search in one sorted array of keys, not a dense texts x codes matrix per feature."""

    def __init__(self, text: Ints, code: Ints, n_codes: int) -> None:
        self.n_codes = n_codes
        self.keys = text * n_codes + code

    def find(self, text: Ints, code: Ints) -> tuple[Ints, npt.NDArray[np.bool_]]:
        """The rows of the pairs that are candidates, and which pairs are."""
        key = text * self.n_codes + code
        at = np.searchsorted(self.keys, key)
        at[at == len(self.keys)] = 0
        found = self.keys[at] == key
        return at[found], found


def candidates(
    table: CodeTable,
    n_chars: Sequence[int],
    firsts: Sequence[Cld2Answer],
    lid_top: npt.NDArray[np.intp],
    lid_p: npt.NDArray[np.float32],
) -> Candidates:
    """The first stage's candidates and rows of the texts whose CLD2 answers are ``firsts``:
    ``lid_top`` (n, 5), langid.py's five most likely classes (columns of ``table.lid_classes``),
    ``lid_p`` their probabilities."""
    n = len(firsts)
    texts = np.arange(n)
    # CLD2: up to 3 languages per text, each with its percent and score
    table = table.covering(c for first in firsts for c, _, _ in first.details)
    index = table.index
    cld = np.array(
        [
            (j, k, index[c], p, sc)
            for j, first in enumerate(firsts)
            for k, (c, p, sc) in enumerate(first.details)
        ],
        dtype=np.float64,
    ).reshape(-1, 5)
    cld_text, cld_pos, cld_at = cld[:, :3].astype(np.intp).T
    lid_code = table.lid_code[lid_top]
    # the candidates: the groups of CLD2's languages and of langid.py's top 3 (not deduplicated)
    proposals = np.full((n, 6), table.none, dtype=np.intp)
    proposals[cld_text, cld_pos] = cld_at
    proposals[:, 3:] = lid_code[:, :3]
    is_cand = np.zeros((n, table.none + 1), dtype=bool)  # the last column: padding
    is_cand[texts[:, None, None], table.members[proposals]] = True
    text, code = np.nonzero(is_cand[:, : table.none])  # by text, then by code: candidates sorted
    rows = _Rows(text, code, table.none)
    x = np.zeros((len(text), len(FEATURES)))
    # CLD2's percent and score of each of its languages, its first answer, and whether it is reliable
    cld_rows, _ = rows.find(cld_text, cld_at)  # each is a candidate
    x[cld_rows, 0] = cld[:, 3] / 100.0
    x[cld_rows, 1] = np.minimum(cld[:, 4] / 1000.0, 2.0)
    top = code == np.array([table.index[first.lang] for first in firsts], dtype=np.intp)[text]
    x[:, 2] = top
    x[:, 3] = top & np.array([first.reliable for first in firsts], dtype=bool)[text]
    # langid.py: its top 5 as codes. Dialects share a code (ar, ary and arz are all "ar"): a code
    # keeps its last entry's probability, and the proposed codes are the first 3 different ones
    # (what a {code: p} dict of the top 5 gives, as the combiner was trained).
    for k in range(lid_top.shape[1]):
        at, found = rows.find(texts, lid_code[:, k])  # the 4th and 5th may be no candidate
        x[at, 4] = lid_p[found, k]
    x[:, 5] = _logp(x[:, 4])
    x[:, 6] = code == lid_code[text, 0]
    new = np.ones(lid_code.shape, dtype=bool)
    for k in range(1, lid_code.shape[1]):
        new[:, k] = (lid_code[:, :k] != lid_code[:, k : k + 1]).all(axis=1)
    lid_proposed = new & (np.cumsum(new, axis=1) <= 3)
    # no detector proposed it: only in a proposed language's group
    x[:, 14] = 1.0
    x[cld_rows, 14] = 0.0
    x[rows.find(np.nonzero(lid_proposed)[0], lid_code[lid_proposed])[0], 14] = 0.0
    short = np.array([1.0 if c < SHORT_CHARS else 0.0 for c in n_chars])[text]
    x[:, 11] = short * x[:, 0]
    x[:, 12] = short * x[:, 4]
    return Candidates(x, text, code, np.bincount(text, minlength=n), short, table)


@dataclass(frozen=True)
class LinearScorer:
    """``score = rows @ weights + lang_weights[lang] @ (1, cld_pct, lid_p, ling_p)``."""

    weights: F64  # (len(FEATURES),)
    lang_weights: F64  # (len(langs), len(LANG_FEATURES))
    langs: tuple[str, ...]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.langs)}

    def lang_index(self, cands: Sequence[str]) -> list[int]:
        index = self._index
        return [index.get(c, -1) for c in cands]

    def score(self, x: F64, lang: npt.NDArray[np.int64]) -> F64:
        """Scores of the rows ``x`` (n, FEATURES) whose languages are ``lang`` (-1: not trained on)."""
        out = x @ self.weights
        known = lang >= 0
        if known.any():
            lw = self.lang_weights[lang[known]]
            xk = x[known]
            out[known] += lw[:, 0] + lw[:, 1] * xk[:, 0] + lw[:, 2] * xk[:, 4] + lw[:, 3] * xk[:, 7]
        return out


@dataclass(frozen=True)
class Combiner:
    """Two linear scorers: ``first`` on CLD2 + langid.py, ``second`` with lingua too, asked only when
    the first stage's probability is under ``threshold``."""

    first: LinearScorer
    second: LinearScorer
    threshold: float

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            features=np.array(FEATURES),
            langs=np.array(self.first.langs),
            first_weights=self.first.weights,
            first_lang_weights=self.first.lang_weights,
            second_weights=self.second.weights,
            second_lang_weights=self.second.lang_weights,
            threshold=np.array(self.threshold),
        )

    def knows(self, lang: str) -> bool:
        """Whether the combiner was trained on ``lang`` (the untrained placeholder knows every one)."""
        return not self.first.langs or lang in self.first._index  # a dict: asked for many posts

    @classmethod
    def placeholder(cls) -> Combiner:
        """All-zero weights (every candidate equal): for training the real one."""
        zero = LinearScorer(np.zeros(len(FEATURES)), np.zeros((0, len(LANG_FEATURES))), ())
        return cls(zero, zero, 0.0)

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> Combiner:
        try:
            with np.load(path, allow_pickle=False) as z:
                features = tuple(str(f) for f in z["features"])
                if features != FEATURES:
                    msg = f"{path} was trained on other features ({features}); retrain it"
                    raise ModelError(msg)
                langs = tuple(str(c) for c in z["langs"])
                first = LinearScorer(z["first_weights"], z["first_lang_weights"], langs)
                second = LinearScorer(z["second_weights"], z["second_lang_weights"], langs)
                return cls(first, second, float(z["threshold"]))
        except (OSError, KeyError, ValueError) as e:
            msg = (
                f"cannot load the language-ID combiner {path} ({e}); "
                "retrain it: python -m murmur.enrich.train_langid"
            )
            raise ModelError(msg) from e


@cache
def default_combiner() -> Combiner:
    return Combiner.load()


def top_k(values: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Per row, the columns of the ``k`` largest values, largest first, ties in column order: the
    same as ``np.argsort(-values, axis=1, kind="stable")[:, :k]`` for values above -inf (such as
    probabilities), without sorting whole rows: ``k`` rounds of argmax (the first of equal values),
    each taking its winner out (4x faster than a partition and a sort of the k)."""
    if values.shape[1] <= k:
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    rest = values.copy()
    rows = np.arange(len(values))
    out = np.empty((len(values), k), dtype=np.intp)
    for i in range(k):
        out[:, i] = best = rest.argmax(axis=1)
        rest[rows, best] = -np.inf
    return out


def softmax_groups(scores: F64, sizes: Sequence[int]) -> list[F64]:
    """Per-text probabilities from the candidates' scores (``sizes``: candidates per text)."""
    if not len(sizes):
        return []
    return np.split(softmax_flat(scores, np.asarray(sizes)), np.cumsum(sizes)[:-1])


def softmax_flat(scores: F64, sizes: Ints) -> F64:
    """``softmax_groups``, concatenated."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    e = np.exp(scores - np.repeat(np.maximum.reduceat(scores, starts), sizes))
    out: F64 = e / np.repeat(np.add.reduceat(e, starts), sizes)
    return out
