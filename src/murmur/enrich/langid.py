"""Language identification: a fast first pass (CLD2) and a learned second opinion where it is unsure.

``LanguageDetector.detect(text)`` works in steps:

1. **CLD2** (``pycld2``, ~165 languages, ~100k texts/s) on the cleaned text (links, @mentions,
   control and C1 characters removed; ``bestEffort`` so short texts still get an answer).
   Its answer is taken as it is when CLD2 calls it reliable, its normalized score is high
   (``score_threshold``) and the language is not in a group CLD2 is known to confuse
   (``CONFUSABLE``: ms/id, bs/hr/sr, nb/nn/da, cs/sk, the South-African Bantu languages, mk/bg, gl/oc).
   Outside the Latin script a reliable answer also stands when it names a language the combiner
   was not trained on (Tigrinya, say), which the combiner would otherwise give to a trained neighbour.
2. Otherwise (a minority of posts: ``stats.routed_fraction``) **langid.py** (``py3langid``, naive
   Bayes over byte n-grams, run vectorized over the batch) gives its probabilities, and a small
   learned **combiner** (``Combiner``: a conditional logit, one linear score per candidate language
   from what the detectors said about it, softmax over the text's candidates) picks among the
   candidates: CLD2's languages and langid.py's top 3, each with its confusable group.
3. Only where that first combiner is unsure (probability under ``Combiner.threshold``: ~2-5 % of
   posts) **lingua** (low accuracy mode, restricted to the candidates) is asked, and a second
   combiner that also weighs lingua's confidence values decides.
4. A routed text written in romanized Hindi or Urdu, which none of the three knows, is ``hi``
   (``romanized_hindustani``: common words, counted).

The combiner's weights (``murmur/assets/models/langid_combiner.npz``) are trained by
``python -m murmur.enrich.train_langid`` on texts other than the measured ones (though lingua's
word pairs are partly cut from the measured sentences: docs/enrichment.md).
Codes are ISO 639-1 where one exists (``iw`` → ``he``, ``no`` → ``nb``, ``zh-Hant`` → ``zh``, ...),
ISO 639-2/3 otherwise (``ceb``, ``haw``, ``pcm``), and ``und`` when there is no linguistic
content or no detector is confident (``min_confidence``). Measured accuracy: docs/enrichment.md.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pycld2

from murmur.enrich.langid_batch import batch_langid
from murmur.errors import ModelError
from murmur.text import may_have_link, may_have_markup
from murmur.types import Post

if TYPE_CHECKING:
    from lingua import Language as LinguaLanguage
    from lingua import LanguageDetector as LinguaDetector

log = logging.getLogger(__name__)

UND = "und"

CONFUSABLE_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(g.split())
    for g in (
        "ms id",
        "bs hr sr sl",
        "nb nn da sv",
        "cs sk",
        "xh zu st tn ts sn",
        "af nl",
        "ru uk be bg mk sr",
        "ca es pt gl oc la it fr",
        "ga gd en",
    )
)
"""Languages that detectors mistake for each other; lingua decides among a whole group."""

_CONFUSABLE_CODES = "ms id bs hr sr nb nn da xh zu st tn ts sn cs sk mk bg gl oc"
CONFUSABLE: frozenset[str] = frozenset(_CONFUSABLE_CODES.split())
"""A CLD2 answer in this set always gets a second opinion (chosen by measurement: docs/enrichment.md)."""

_CODE_MAP: dict[str, str] = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "no": "nb",
    "zh-Hant": "zh",
    "zh-Hans": "zh",
    "sr-ME": "sr",
    "ary": "ar",
    "arz": "ar",
    "gug": "gn",
    "uzs": "uz",
    "fuv": "ff",
}
_NOT_A_LANGUAGE = frozenset({"un", "xxx", "zxx", "zzb", "zze", "zzh", "zzp", "tlh", "und", ""})


@cache
def iso_code(code: str) -> str:
    """A detector's code as murmur stores it: ISO 639-1 where one exists, ``und`` for none."""
    if code in _NOT_A_LANGUAGE or code.startswith("xx-"):
        return UND
    return _CODE_MAP.get(code, code)


_CONTROL_RX = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"  # control, C1, lone surrogates
# "@" (or "#") first, then the look-behind: the same matches as "(?<!\w)@...", but the regex engine
# jumps from one "@" to the next instead of trying every position (~6x faster on a tweet)
_MENTION_RX = r"@(?<!\w@)[\w.]+"
_DROP = re.compile(r"(?:https?://|www\.)\S+|" + _MENTION_RX + "|" + _CONTROL_RX, re.IGNORECASE)
_MENTION = re.compile(_MENTION_RX)
_HASH = re.compile(r"#(?<!\w#)(?=\w)")
_CONTROL = re.compile(_CONTROL_RX)


def _drop_control(text: str) -> str:
    # printable: no control character (a faster test than the search; most posts pass it)
    return text if text.isprintable() or not _CONTROL.search(text) else _CONTROL.sub(" ", text)


def clean(text: str) -> str:
    """What the detectors see: no links, @mentions, control/C1 characters or lone surrogates;
    hashtags keep their words (``#Wahlen2025`` → ``Wahlen2025``)."""
    if not may_have_markup(text):  # most posts: nothing but control characters can match
        return _drop_control(text).strip()
    if may_have_link(text):  # one pass: a link may hold an "@", a mention a "www."
        text = _DROP.sub(" ", text)
    else:  # the same as _DROP: a mention holds no control character
        text = _drop_control(_MENTION.sub(" ", text) if "@" in text else text)
    return (_HASH.sub("", text) if "#" in text else text).strip()


_ASCII_LETTER = re.compile("[A-Za-z]")


def _has_letters(text: str) -> bool:
    if text.isascii():  # the ASCII letters are A-Z and a-z; one search in C
        return _ASCII_LETTER.search(text) is not None
    return any(map(str.isalpha, text))


class Cld2Answer(NamedTuple):
    """What CLD2 said about one text (a named tuple: built for every routed post, ~3x cheaper than a
    frozen dataclass)."""

    lang: str  # mapped with iso_code; "und" when CLD2 had no answer
    reliable: bool
    percent: int
    score: float
    candidates: tuple[str, ...]  # the top-3 languages CLD2 saw, mapped, without "und"
    details: tuple[tuple[str, int, float], ...] = ()  # (code, percent, score) of each candidate


Cld2Details = tuple[tuple[str, str, int, float], ...]
"""CLD2's top 3 as ``pycld2.detect`` gives them: (name, code, percent, score)."""
_NO_DETAILS: Cld2Details = (("Unknown", "un", 0, 0.0),)


def cld2_details(text: str) -> tuple[bool, Cld2Details]:
    """CLD2 in best-effort mode on already cleaned text: whether it is reliable, and its top 3."""
    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:  # invalid UTF-8 after all: keep only printable characters
        printable = "".join(ch for ch in text if ch.isprintable())
        try:
            reliable, _, details = pycld2.detect(printable, bestEffort=True)
        except pycld2.error:
            return False, _NO_DETAILS
    return reliable, details


def cld2_answer(reliable: bool, details: Cld2Details) -> Cld2Answer:
    """``cld2_details``' answer with the codes mapped (only routed texts need more than its first)."""
    _, code, percent, score = details[0]
    mapped: dict[str, tuple[str, int, float]] = {}
    for _, c, p, sc in details:
        if c == "un":  # CLD2's "no language": the usual filler of the top 3
            continue
        m = iso_code(c)
        if m != UND and m not in mapped:
            mapped[m] = (m, p, sc)
    return Cld2Answer(
        iso_code(code), bool(reliable), int(percent), float(score), tuple(mapped), tuple(mapped.values())
    )


def cld2(text: str) -> Cld2Answer:
    """CLD2 in best-effort mode on already cleaned text."""
    return cld2_answer(*cld2_details(text))


def cld2_only(text: str) -> str:
    """The peer: CLD2 alone (bestEffort, cleaned text), ``und`` when it has no answer."""
    return cld2(clean(text)).lang


@cache
def _lingua_codes() -> dict[str, LinguaLanguage]:
    from lingua import Language

    return {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}


@cache
def _lingua_code_of() -> dict[LinguaLanguage, str]:
    """``_lingua_codes`` inverted (a look-up, not three attribute reads, per confidence value)."""
    return {lang: code for code, lang in _lingua_codes().items()}


# --- the learned combiner --------------------------------------------------------------------------

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
        known = _lingua_codes()
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
    return np.split(_softmax(scores, np.asarray(sizes)), np.cumsum(sizes)[:-1])


def _softmax(scores: F64, sizes: Ints) -> F64:
    """``softmax_groups``, concatenated."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    e = np.exp(scores - np.repeat(np.maximum.reduceat(scores, starts), sizes))
    out: F64 = e / np.repeat(np.add.reduceat(e, starts), sizes)
    return out


@dataclass(slots=True)
class RoutingStats:
    texts: int = 0
    routed: int = 0
    lingua: int = 0  # texts the second stage (lingua) looked at

    @property
    def routed_fraction(self) -> float:
        return self.routed / self.texts if self.texts else 0.0


@dataclass(frozen=True, slots=True)
class LangResult:
    lang: str
    conf: float


_NO_LANGUAGE = LangResult(UND, 0.0)


@cache
def _cld2_result(lang: str, percent: int) -> LangResult:
    """A sure CLD2 answer (one shared, immutable result per language and percent)."""
    return LangResult(lang, round(percent / 100.0, 4))


class LanguageDetector:
    """CLD2 first, a learned combiner of CLD2, langid.py and lingua where CLD2 is unsure (see module
    doc). Deterministic."""

    def __init__(
        self,
        *,
        accuracy: Literal["low", "high"] = "low",
        score_threshold: float = 700.0,
        min_confidence: float = 0.2,
        max_detectors: int = 2048,
        max_chars: int = 2000,
        combiner: Combiner | None = None,
    ) -> None:
        self.accuracy = accuracy
        self.score_threshold = score_threshold
        self.min_confidence = min_confidence
        # lingua detectors, one per candidate set, share lingua's models: a thousand add under 1 MB,
        # building one takes ~0.15 ms, and the real payload mix asks about ~300 different sets (with
        # room for 128, most were rebuilt on every pass: ~1.5 µs a post)
        self.max_detectors = max_detectors
        self.max_chars = max_chars  # a post's language shows in its first 2,000 characters
        self.combiner = combiner or default_combiner()
        self._reset()

    def _reset(self) -> None:
        self.stats = RoutingStats()
        self._detectors: OrderedDict[frozenset[str], LinguaDetector] = OrderedDict()
        self._lock = threading.Lock()
        self._table: CodeTable | None = None

    def __getstate__(self) -> dict[str, object]:
        # lingua's detectors and the lock cannot be pickled: they are rebuilt on first use
        return {
            "accuracy": self.accuracy,
            "score_threshold": self.score_threshold,
            "min_confidence": self.min_confidence,
            "max_detectors": self.max_detectors,
            "max_chars": self.max_chars,
            "combiner": self.combiner,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.accuracy = "high" if state["accuracy"] == "high" else "low"
        self.score_threshold = float(str(state["score_threshold"]))
        self.min_confidence = float(str(state["min_confidence"]))
        self.max_detectors = int(str(state["max_detectors"]))
        self.max_chars = int(str(state["max_chars"]))
        combiner = state.get("combiner")
        self.combiner = combiner if isinstance(combiner, Combiner) else default_combiner()
        self._reset()

    # --- the second opinion ------------------------------------------------------------------

    def _lingua(self, langs: frozenset[str]) -> LinguaDetector:
        with self._lock:
            det = self._detectors.get(langs)
            if det is not None:
                self._detectors.move_to_end(langs)
                return det
        from lingua import LanguageDetectorBuilder

        codes = _lingua_codes()
        builder = LanguageDetectorBuilder.from_languages(*[codes[c] for c in sorted(langs)])
        if self.accuracy == "low":
            builder = builder.with_low_accuracy_mode()
        det = builder.build()
        with self._lock:
            self._detectors[langs] = det
            while len(self._detectors) > self.max_detectors:
                self._detectors.popitem(last=False)
        return det

    def lingua_values(self, text: str, cands: Sequence[str]) -> dict[str, float]:
        """lingua's confidence values among the candidates it knows (empty: fewer than two)."""
        known = frozenset(c for c in cands if c in _lingua_codes())
        if len(known) < 2:
            return {}
        values = self._lingua(known).compute_language_confidence_values(one_script(text))
        code_of = _lingua_code_of()
        return {code_of[v.language]: float(v.value) for v in values}

    def _sure(self, lang: str, reliable: bool, score: float, text: str) -> bool:
        """Whether CLD2's answer (``lang``, mapped) stands without a second opinion."""
        if lang == UND or not reliable or lang in CONFUSABLE:
            return False
        if score >= self.score_threshold:
            return True
        # The combiner has learned weights only for the languages it was trained on. Outside the
        # Latin script (where a reliable low-score CLD2 guess of a minor language is mostly a
        # confusion: Corsican for Italian, Volapük for Basque), a reliable CLD2 answer naming a
        # language it was not trained on stands, or the combiner would lean to a trained neighbour
        # (Tigrinya to Amharic: measured on AfriSenti dev, 385 of 398 Tigrinya tweets).
        return not self.combiner.knows(lang) and not _mostly_latin(text)

    @staticmethod
    def _combine(scorer: LinearScorer, cands: Candidates) -> list[tuple[str, float]]:
        """Each text's most likely candidate (the first of equals) and its probability."""
        lang = np.asarray(scorer.lang_index(cands.table.codes), dtype=np.int64)[cands.code]
        p = _softmax(scorer.score(cands.x, lang), cands.sizes)
        starts = cands.starts
        is_best = p == np.repeat(np.maximum.reduceat(p, starts), cands.sizes)
        best = np.minimum.reduceat(np.where(is_best, np.arange(len(p)), len(p)), starts)
        codes = cands.table.codes
        return [(codes[c], pr) for c, pr in zip(cands.code[best].tolist(), p[best].tolist(), strict=True)]

    # --- public API ----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load now what the first routed texts would load: langid.py's model (~0.5 s) and lingua's
        models for every language it may be asked about (~10 ms each, 75 languages, ~80 MB; lingua
        shares them between its detectors)."""
        batch_langid()
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_languages(*_lingua_codes().values())
        if self.accuracy == "low":
            builder = builder.with_low_accuracy_mode()
        builder.with_preloaded_language_models().build()

    def detect(self, text: str) -> LangResult:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Iterable[str]) -> list[LangResult]:
        """Language of every text; the same answers as ``detect`` one by one, faster in a batch
        (langid.py and the combiner run on all routed texts at once)."""
        cleaned = [clean(t[: self.max_chars]) for t in texts]
        results: list[LangResult | None] = [None] * len(cleaned)
        routed: list[tuple[int, Cld2Answer]] = []
        for i, text in enumerate(cleaned):
            if not _has_letters(text):
                results[i] = _NO_LANGUAGE
                continue
            reliable, details = cld2_details(text)
            _, code, percent, score = details[0]
            lang = iso_code(code)
            if self._sure(lang, reliable, score, text):
                results[i] = _cld2_result(lang, percent)
            else:
                routed.append((i, cld2_answer(reliable, details)))
        self.stats.texts += len(cleaned)
        self.stats.routed += len(routed)
        if routed:
            cands = self._candidates(cleaned, routed)
            todo: list[int] = []
            for j, (lang, p) in enumerate(self._combine(self.combiner.first, cands)):
                if p >= self.combiner.threshold:
                    results[routed[j][0]] = self._result(lang, p)
                else:
                    todo.append(j)
            if todo:
                self.stats.lingua += len(todo)
                lings = [self.lingua_values(cleaned[routed[j][0]], cands.cands(j)) for j in todo]
                second = cands.select(todo).with_lingua(lings)
                for j, (lang, p) in zip(todo, self._combine(self.combiner.second, second), strict=True):
                    results[routed[j][0]] = self._result(lang, p)
        for i, _ in routed:
            # romanized Hindi/Urdu: no detector above knows it, so the combiner picked a wrong
            # candidate (CLD2 was sure of one for only 12 of the 502 such XLM-T tweets)
            if (r := results[i]) is not None and r.lang != "hi" and romanized_hindustani(cleaned[i][:500]):
                results[i] = LangResult("hi", HINDUSTANI_CONF)
        return [r if r is not None else _NO_LANGUAGE for r in results]

    def _result(self, lang: str, p: float) -> LangResult:
        return LangResult(UND if lang == UND or p < self.min_confidence else lang, round(p, 4))

    def _candidates(self, cleaned: Sequence[str], routed: Sequence[tuple[int, Cld2Answer]]) -> Candidates:
        """langid.py's probabilities for the routed texts (in groups of at most 1,024, to bound the
        memory of its walk) and their candidates."""
        bl = batch_langid()
        if self._table is None:
            self._table = CodeTable.default(bl.classes)
        tops: list[npt.NDArray[np.intp]] = []
        top_p: list[npt.NDArray[np.float32]] = []
        for j in range(0, len(routed), 1024):
            proba = bl.proba([cleaned[i] for i, _ in routed[j : j + 1024]])
            tops.append(top_k(proba, 5))
            top_p.append(np.take_along_axis(proba, tops[-1], axis=1))
        firsts = [first for _, first in routed]
        n_chars = [len(cleaned[i]) for i, _ in routed]
        out = candidates(self._table, n_chars, firsts, np.concatenate(tops), np.concatenate(top_p))
        self._table = out.table
        return out


_KANA_HAN = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HALFWIDTH", "IDEOGRAPHIC"})


@cache
def _script(ch: str) -> str:
    """The script of a letter, from its Unicode name (``GREEK``, ``LATIN``; Han and kana are one:
    ``CJK``)."""
    name = unicodedata.name(ch, "").split(" ", 1)[0]
    return "CJK" if name in _KANA_HAN else name


def one_script(text: str) -> str:
    """``text`` with only the letters of its most common script, counted in words (a run of letters
    of one script; in Han and kana every character, as lingua counts them; ties: the script's name
    decides); the other letters become spaces. What lingua sees: on a text mixing scripts it picks
    one by an unordered count, so its answer changed from call to call (e.g. Latin, Greek and
    Japanese words in one tweet: Lithuanian in some calls, Japanese in others)."""
    if text.isascii():
        return text
    counts: dict[str, int] = {}
    prev = ""
    for ch in text:
        s = _script(ch) if ch.isalpha() else ""
        if s and (s != prev or s == "CJK"):
            counts[s] = counts.get(s, 0) + 1
        prev = s
    if len(counts) < 2:
        return text
    keep = max(counts, key=lambda s: (counts[s], s))
    return "".join(" " if ch.isalpha() and _script(ch) != keep else ch for ch in text)


def _mostly_latin(text: str) -> bool:
    """Whether most letters of ``text`` are Latin (below U+0250: Basic Latin to IPA Extensions)."""
    letters = list(filter(str.isalpha, text))
    return sum(ch < "\u0250" for ch in letters) * 2 > len(letters)


_HINDUSTANI_LIST = """hai hain nahi nahin nhi kya kyu kyun kyon mein bhi aur tha thi raha rahi rahe karo karna
    gaya gayi hota hoti yeh woh hum tum aap apna apne mera meri tera teri kuch bahut bohot accha acha achha
    bhai yaar kaise kaisa kab kahan jab tab agar lekin sirf abhi hoga hogi wala wali wale diya liya
    dekho dekh sabko mujhe tujhe humko tumko usko unko iska uska inka unka bas matlab pata"""
HINDUSTANI_WORDS: frozenset[str] = frozenset(_HINDUSTANI_LIST.split())
"""Common words of Hindi and Urdu as they are written in Latin letters on social media (function
words, pronouns, auxiliaries). A few are words of other languages too (Italian and Malay "hai",
French "bas"), so ``romanized_hindustani`` asks for two different ones."""
_LETTER_RUN = re.compile(r"[^\W\d_]+")
HINDUSTANI_CONF = 0.95
"""The ``lang_conf`` of a romanized Hindustani answer: of the texts the rule called so on our sets,
every one was in XLM-T's Hindi files (docs/enrichment.md)."""


def romanized_hindustani(text: str) -> bool:
    """Whether ``text`` (cleaned) is Hindi or Urdu in Latin letters ("Hinglish"), which no detector
    here knows (CLD2, langid.py and lingua scatter it over Somali, Tsonga, Hausa, Malay, ...): at
    least two different ``HINDUSTANI_WORDS`` that make up at least 15 % of its words, in mostly
    Latin text. Chosen by measurement: 502 of XLM-T's 2,163 Hindi tweets (about half of them are
    English), none of the other XLM-T tweets, AfriSenti dev tweets or lingua sentences."""
    words = _LETTER_RUN.findall(text.lower())
    if HINDUSTANI_WORDS.isdisjoint(words):  # nearly every text: one pass in C
        return False
    hits = [w for w in words if w in HINDUSTANI_WORDS]
    return len(set(hits)) >= 2 and len(hits) >= 0.15 * len(words) and _mostly_latin(text)


class Cld2LinguaLanguage:
    """``murmur.lang.cld2lingua@2``: assigns ``lang`` (ISO 639-1, ``und``) and ``lang_conf``."""

    name = "murmur.lang.cld2lingua@2"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"lang", "lang_conf"})

    def __init__(self, detector: LanguageDetector | None = None) -> None:
        self.detector = detector or LanguageDetector()

    def warm_up(self) -> None:
        self.detector.warm_up()

    def process(self, posts: Sequence[Post]) -> None:
        for post, res in zip(posts, self.detector.detect_many([p.text for p in posts]), strict=True):
            post.lang = res.lang
            post.lang_conf = res.conf
