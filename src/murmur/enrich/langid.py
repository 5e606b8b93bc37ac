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
_MENTION_RX = r"(?<!\w)@[\w.]+"
_DROP = re.compile(r"(?:https?://|www\.)\S+|" + _MENTION_RX + "|" + _CONTROL_RX, re.IGNORECASE)
_DROP_NO_LINKS = re.compile(_MENTION_RX + "|" + _CONTROL_RX)
"""``_DROP`` for texts without ``://`` or ``w.``: the same matches, faster (most texts with markup
have @mentions only)."""
_HASH = re.compile(r"(?<!\w)#(?=\w)")
_CONTROL = re.compile(_CONTROL_RX)


def clean(text: str) -> str:
    """What the detectors see: no links, @mentions, control/C1 characters or lone surrogates;
    hashtags keep their words (``#Wahlen2025`` → ``Wahlen2025``)."""
    if may_have_markup(text):
        text = (_DROP if may_have_link(text) else _DROP_NO_LINKS).sub(" ", text)
        return (_HASH.sub("", text) if "#" in text else text).strip()
    # most posts: nothing but control characters can match (same result, twice as fast)
    return (_CONTROL.sub(" ", text) if _CONTROL.search(text) else text).strip()


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


class Cld2Answer(NamedTuple):
    """What CLD2 said about one text (a named tuple: built for every post, ~3x cheaper than a frozen
    dataclass)."""

    lang: str  # mapped with iso_code; "und" when CLD2 had no answer
    reliable: bool
    percent: int
    score: float
    candidates: tuple[str, ...]  # the top-3 languages CLD2 saw, mapped, without "und"
    details: tuple[tuple[str, int, float], ...] = ()  # (code, percent, score) of each candidate


def cld2(text: str) -> Cld2Answer:
    """CLD2 in best-effort mode on already cleaned text."""
    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:  # invalid UTF-8 after all: keep only printable characters
        printable = "".join(ch for ch in text if ch.isprintable())
        try:
            reliable, _, details = pycld2.detect(printable, bestEffort=True)
        except pycld2.error:
            return Cld2Answer(UND, False, 0, 0.0, ())
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


def cld2_only(text: str) -> str:
    """The peer: CLD2 alone (bestEffort, cleaned text), ``und`` when it has no answer."""
    return cld2(clean(text)).lang


@cache
def _lingua_codes() -> dict[str, LinguaLanguage]:
    from lingua import Language

    return {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}


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


def _group(code: str) -> frozenset[str]:
    out = _GROUPS.get(code)
    if out is None:
        out = frozenset({code}.union(*(g for g in CONFUSABLE_GROUPS if code in g)))
        _GROUPS[code] = out
    return out


_GROUPS: dict[str, frozenset[str]] = {}


def candidates(first: Cld2Answer, lid_top: Sequence[str]) -> tuple[str, ...]:
    """CLD2's languages and langid.py's top 3, each with its confusable group (sorted)."""
    cands: set[str] = set()
    for code in (*first.candidates, *lid_top):
        if code != UND:
            cands |= _group(code)
    return tuple(sorted(cands))


def candidate_rows(
    n_chars: int,
    first: Cld2Answer,
    lid: dict[str, float],
    ling: dict[str, float] | None,
    cands: Sequence[str],
) -> list[list[float]]:
    """One row of ``FEATURES`` per candidate. ``lid``: langid.py's probabilities (mapped codes);
    ``ling``: lingua's confidence values among the candidates, ``None`` in the first stage."""
    short = 1.0 if n_chars < SHORT_CHARS else 0.0
    details = {code: (pct / 100.0, min(score / 1000.0, 2.0)) for code, pct, score in first.details}
    lid_top = next(iter(lid), UND)  # ``lid`` is ordered, most likely first
    proposed = {*first.candidates, *list(lid)[:3]}
    reliable = first.reliable
    rows: list[list[float]] = []
    if ling is not None:
        ling_top = max(ling, key=ling.__getitem__) if ling else UND
        known = _lingua_codes()
    for c in cands:
        cld_pct, cld_score = details.get(c, (0.0, 0.0))
        lp = lid.get(c, 0.0)
        top = 1.0 if c == first.lang else 0.0
        if ling is None:
            gp = glogp = gtop = unknown = 0.0
        else:
            gp = ling.get(c, 0.0)
            glogp = math.log10(gp if gp > 1e-4 else 1e-4) + 4.0
            gtop = 1.0 if c == ling_top else 0.0
            unknown = 0.0 if c in known else 1.0
        rows.append(
            [
                cld_pct,
                cld_score,
                top,
                top if reliable else 0.0,
                lp,
                math.log10(lp if lp > 1e-4 else 1e-4) + 4.0,
                1.0 if c == lid_top else 0.0,
                gp,
                glogp,
                gtop,
                unknown,
                short * cld_pct,
                short * lp,
                short * gp,
                0.0 if c in proposed else 1.0,
            ]
        )
    return rows


F64 = npt.NDArray[np.float64]


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
        return not self.first.langs or lang in self.first.langs

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
    same as ``np.argsort(-values, axis=1, kind="stable")[:, :k]``, without sorting whole rows."""
    if values.shape[1] <= k:
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # by value, then by column
    out: npt.NDArray[np.intp] = np.take_along_axis(part, order, axis=1)
    # Where the k-th value ties with one left out, the partition may have kept the wrong one of them.
    kth = np.take_along_axis(values, out[:, -1:], axis=1)
    tied = np.flatnonzero((values >= kth).sum(axis=1) > k)
    if len(tied):
        out[tied] = np.argsort(-values[tied], axis=1, kind="stable")[:, :k]
    return out


def softmax_groups(scores: F64, sizes: Sequence[int]) -> list[F64]:
    """Per-text probabilities from the candidates' scores (``sizes``: candidates per text)."""
    if not sizes:
        return []
    bounds = np.cumsum(sizes)[:-1]
    starts = np.concatenate(([0], bounds))
    e = np.exp(scores - np.repeat(np.maximum.reduceat(scores, starts), sizes))
    p = e / np.repeat(np.add.reduceat(e, starts), sizes)
    return np.split(p, bounds)


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


@dataclass(slots=True)
class _Routed:
    index: int
    first: Cld2Answer
    lid: dict[str, float]
    cands: tuple[str, ...]


class LanguageDetector:
    """CLD2 first, a learned combiner of CLD2, langid.py and lingua where CLD2 is unsure (see module
    doc). Deterministic."""

    def __init__(
        self,
        *,
        accuracy: Literal["low", "high"] = "low",
        score_threshold: float = 700.0,
        min_confidence: float = 0.2,
        max_detectors: int = 128,
        max_chars: int = 2000,
        combiner: Combiner | None = None,
    ) -> None:
        self.accuracy = accuracy
        self.score_threshold = score_threshold
        self.min_confidence = min_confidence
        self.max_detectors = max_detectors
        self.max_chars = max_chars  # a post's language shows in its first 2,000 characters
        self.combiner = combiner or default_combiner()
        self._reset()

    def _reset(self) -> None:
        self.stats = RoutingStats()
        self._detectors: OrderedDict[frozenset[str], LinguaDetector] = OrderedDict()
        self._lock = threading.Lock()

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
        return {v.language.iso_code_639_1.name.lower(): float(v.value) for v in values}

    def _sure(self, first: Cld2Answer, text: str) -> bool:
        if first.lang == UND or not first.reliable or first.lang in CONFUSABLE:
            return False
        if first.score >= self.score_threshold:
            return True
        # The combiner has learned weights only for the languages it was trained on. Outside the
        # Latin script (where a reliable low-score CLD2 guess of a minor language is mostly a
        # confusion: Corsican for Italian, Volapük for Basque), a reliable CLD2 answer naming a
        # language it was not trained on stands, or the combiner would lean to a trained neighbour
        # (Tigrinya to Amharic: measured on AfriSenti dev, 385 of 398 Tigrinya tweets).
        return not self.combiner.knows(first.lang) and not _mostly_latin(text)

    def _combine(
        self,
        scorer: LinearScorer,
        texts: Sequence[str],
        items: Sequence[_Routed],
        lings: Sequence[dict[str, float] | None],
    ) -> list[tuple[str, float]]:
        rows: list[list[float]] = []
        langs: list[int] = []
        sizes: list[int] = []
        for it, ling in zip(items, lings, strict=True):
            rows += candidate_rows(len(texts[it.index]), it.first, it.lid, ling, it.cands)
            langs += scorer.lang_index(it.cands)
            sizes.append(len(it.cands))
        scores = scorer.score(np.asarray(rows, dtype=np.float64), np.asarray(langs, dtype=np.int64))
        out: list[tuple[str, float]] = []
        for it, p in zip(items, softmax_groups(scores, sizes), strict=True):
            k = int(p.argmax())
            out.append((it.cands[k], float(p[k])))
        return out

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
                results[i] = LangResult(UND, 0.0)
                continue
            first = cld2(text)
            if self._sure(first, text):
                results[i] = LangResult(first.lang, round(first.percent / 100.0, 4))
            else:
                routed.append((i, first))
        self.stats.texts += len(cleaned)
        self.stats.routed += len(routed)
        if routed:
            items = self._langid(cleaned, routed)
            todo: list[_Routed] = []
            for it, (lang, p) in zip(
                items, self._combine(self.combiner.first, cleaned, items, [None] * len(items)), strict=True
            ):
                if p >= self.combiner.threshold:
                    results[it.index] = self._result(lang, p)
                else:
                    todo.append(it)
            if todo:
                self.stats.lingua += len(todo)
                lings: list[dict[str, float] | None] = [
                    self.lingua_values(cleaned[it.index], it.cands) for it in todo
                ]
                for it, (lang, p) in zip(
                    todo, self._combine(self.combiner.second, cleaned, todo, lings), strict=True
                ):
                    results[it.index] = self._result(lang, p)
        for i, _ in routed:
            # romanized Hindi/Urdu: no detector above knows it, so the combiner picked a wrong
            # candidate (CLD2 was sure of one for only 12 of the 502 such XLM-T tweets)
            if (r := results[i]) is not None and r.lang != "hi" and romanized_hindustani(cleaned[i][:500]):
                results[i] = LangResult("hi", HINDUSTANI_CONF)
        return [r if r is not None else LangResult(UND, 0.0) for r in results]

    def _result(self, lang: str, p: float) -> LangResult:
        return LangResult(UND if lang == UND or p < self.min_confidence else lang, round(p, 4))

    @staticmethod
    def _langid(cleaned: Sequence[str], routed: Sequence[tuple[int, Cld2Answer]]) -> list[_Routed]:
        """langid.py's probabilities for the routed texts (in cache-sized groups) and their candidates."""
        bl = batch_langid()
        codes = [iso_code(c) for c in bl.classes]
        items: list[_Routed] = []
        for j in range(0, len(routed), 256):
            group = routed[j : j + 256]
            proba = bl.proba([cleaned[i] for i, _ in group])
            tops = top_k(proba, 5)
            top_p = np.take_along_axis(proba, tops, axis=1).tolist()
            for (i, first), top, ps in zip(group, tops.tolist(), top_p, strict=True):
                lid = {codes[k]: p for k, p in zip(top, ps, strict=True)}
                cands = candidates(first, [codes[k] for k in top[:3]])
                items.append(_Routed(i, first, lid, cands))
        return items


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
    letters = [ch for ch in text if ch.isalpha()]
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
