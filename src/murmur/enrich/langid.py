"""Language identification: a fast first pass (CLD2) and a careful second opinion where it is unsure.

``LanguageDetector.detect(text)`` works in two steps:

1. **CLD2** (``pycld2``, ~165 languages, ~100k texts/s) on the cleaned text (links, @mentions,
   control and C1 characters removed; ``bestEffort`` so short texts still get an answer).
   Its answer is taken as it is when CLD2 calls it reliable, its normalized score is high
   (``score_threshold``) and the language is not in a group CLD2 is known to confuse
   (``CONFUSABLE``: ms/id, bs/hr/sr, nb/nn/da, cs/sk, the South-African Bantu languages, mk/bg, gl/oc).
2. Otherwise (a minority of posts: ``stats.routed_fraction``) two more detectors vote:
   **langid.py** (``py3langid``, ~100 languages, naive Bayes over byte n-grams) and **lingua**
   restricted to the candidates CLD2 and langid.py proposed plus their confusable groups (low
   accuracy mode by default: ~250 MB for every language; ``accuracy="high"`` is +0.3 points on the
   lingua sentences for ~1.3 GB). The majority wins; with three different answers lingua's does.
   When langid.py agrees with CLD2, lingua cannot change the majority and is not asked.

Codes are ISO 639-1 where one exists (``iw`` → ``he``, ``no`` → ``nb``, ``zh-Hant`` → ``zh``, ...),
ISO 639-2/3 otherwise (``ceb``, ``haw``, ``pcm``), and ``und`` when there is no linguistic
content or no detector is confident (``min_confidence``). Measured accuracy: docs/enrichment.md.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

import pycld2

from murmur.enrich.langid_batch import batch_langid
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


def iso_code(code: str) -> str:
    """A detector's code as murmur stores it: ISO 639-1 where one exists, ``und`` for none."""
    if code in _NOT_A_LANGUAGE or code.startswith("xx-"):
        return UND
    return _CODE_MAP.get(code, code)


_DROP = re.compile(
    r"(?:https?://|www\.)\S+"  # links
    r"|(?<!\w)@[\w.]+"  # @mentions
    "|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]",  # control, C1, lone surrogates
    re.IGNORECASE,
)
_HASH = re.compile(r"(?<!\w)#(?=\w)")


def clean(text: str) -> str:
    """What the detectors see: no links, @mentions, control/C1 characters or lone surrogates;
    hashtags keep their words (``#Wahlen2025`` → ``Wahlen2025``)."""
    return _HASH.sub("", _DROP.sub(" ", text)).strip()


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


@dataclass(frozen=True, slots=True)
class Cld2Answer:
    lang: str  # mapped with iso_code; "und" when CLD2 had no answer
    reliable: bool
    percent: int
    score: float
    candidates: tuple[str, ...]  # the top-3 languages CLD2 saw, mapped, without "und"


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
    name, code, percent, score = details[0]
    del name
    cands = tuple(dict.fromkeys(c for c in (iso_code(d[1]) for d in details) if c != UND))
    return Cld2Answer(iso_code(code), bool(reliable), int(percent), float(score), cands)


def cld2_only(text: str) -> str:
    """The peer: CLD2 alone (bestEffort, cleaned text), ``und`` when it has no answer."""
    return cld2(clean(text)).lang


@cache
def _lingua_codes() -> dict[str, LinguaLanguage]:
    from lingua import Language

    return {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}


@dataclass(slots=True)
class RoutingStats:
    texts: int = 0
    routed: int = 0

    @property
    def routed_fraction(self) -> float:
        return self.routed / self.texts if self.texts else 0.0


@dataclass(frozen=True, slots=True)
class LangResult:
    lang: str
    conf: float


class LanguageDetector:
    """CLD2 first, langid.py + lingua where CLD2 is unsure (see module doc). Deterministic."""

    def __init__(
        self,
        *,
        accuracy: Literal["low", "high"] = "low",
        score_threshold: float = 600.0,
        min_confidence: float = 0.2,
        max_detectors: int = 128,
        max_chars: int = 2000,
    ) -> None:
        self.accuracy = accuracy
        self.score_threshold = score_threshold
        self.min_confidence = min_confidence
        self.max_detectors = max_detectors
        self.max_chars = max_chars  # a post's language shows in its first 2,000 characters
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
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.accuracy = "high" if state["accuracy"] == "high" else "low"
        self.score_threshold = float(str(state["score_threshold"]))
        self.min_confidence = float(str(state["min_confidence"]))
        self.max_detectors = int(str(state["max_detectors"]))
        self.max_chars = int(str(state["max_chars"]))
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

    @staticmethod
    def _group(code: str) -> set[str]:
        out = {code}
        for g in CONFUSABLE_GROUPS:
            if code in g:
                out |= g
        return out

    def _second_opinion(self, text: str, first: Cld2Answer, lid: list[tuple[str, float]]) -> LangResult:
        """The vote of CLD2, langid.py (``lid``: its top 3) and lingua (see module doc)."""
        c = first.lang
        lid_top = lid[0][0] if lid else UND
        lid_probs = dict(lid)
        if lid_top == c:  # two of three agree: lingua cannot change the majority
            return LangResult(c, (first.percent / 100.0 + lid_probs[c] + 1.0) / 3.0)
        cands: set[str] = set()
        for code in (*first.candidates, *(code for code, _ in lid)):
            if code != UND:
                cands |= self._group(code)
        lingua_cands = frozenset(cands & _lingua_codes().keys())
        ling_top, ling_probs = UND, {}
        if len(lingua_cands) >= 2:
            values = self._lingua(lingua_cands).compute_language_confidence_values(text)
            ling_probs = {v.language.iso_code_639_1.name.lower(): float(v.value) for v in values}
            if values and values[0].value > 0:
                ling_top = values[0].language.iso_code_639_1.name.lower()
        if ling_top == UND:  # lingua could not help: CLD2 if it has an answer, else langid.py
            best = c if c != UND else lid_top
        elif ling_top == lid_top or c not in (ling_top, lid_top):
            best = ling_top
        else:
            best = c
        votes = [
            first.percent / 100.0 if c == best else 0.0,
            lid_probs.get(best, 0.0),
            ling_probs.get(best, 0.0) if ling_probs else (1.0 if best == c else 0.0),
        ]
        return LangResult(best, sum(votes) / 3.0)

    def _sure(self, first: Cld2Answer) -> bool:
        return (
            first.lang != UND
            and first.reliable
            and first.score >= self.score_threshold
            and first.lang not in CONFUSABLE
        )

    # --- public API ----------------------------------------------------------------------------

    def detect(self, text: str) -> LangResult:
        return self.detect_many([text])[0]

    def detect_many(self, texts: Iterable[str]) -> list[LangResult]:
        """Language of every text; the same answers as ``detect`` one by one, faster in a batch
        (langid.py runs on all routed texts at once)."""
        cleaned = [clean(t[: self.max_chars]) for t in texts]
        results: list[LangResult | None] = [None] * len(cleaned)
        routed: list[tuple[int, Cld2Answer]] = []
        for i, text in enumerate(cleaned):
            if not _has_letters(text):
                results[i] = LangResult(UND, 0.0)
                continue
            first = cld2(text)
            if self._sure(first):
                results[i] = LangResult(first.lang, round(first.percent / 100.0, 4))
            else:
                routed.append((i, first))
        self.stats.texts += len(cleaned)
        self.stats.routed += len(routed)
        if routed:
            tops = [
                top
                for j in range(0, len(routed), 256)  # langid.py in cache-sized groups
                for top in batch_langid().top([cleaned[i] for i, _ in routed[j : j + 256]], k=3)
            ]
            for (i, first), top in zip(routed, tops, strict=True):
                lid = [(iso_code(code), p) for code, p in top]
                res = self._second_opinion(cleaned[i], first, lid)
                conf = round(res.conf, 4)
                results[i] = LangResult(
                    UND if res.lang == UND or res.conf < self.min_confidence else res.lang, conf
                )
        return [r if r is not None else LangResult(UND, 0.0) for r in results]


class Cld2LinguaLanguage:
    """``murmur.lang.cld2lingua@1``: assigns ``lang`` (ISO 639-1, ``und``) and ``lang_conf``."""

    name = "murmur.lang.cld2lingua@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"lang", "lang_conf"})

    def __init__(self, detector: LanguageDetector | None = None) -> None:
        self.detector = detector or LanguageDetector()

    def process(self, posts: Sequence[Post]) -> None:
        for post, res in zip(posts, self.detector.detect_many([p.text for p in posts]), strict=True):
            post.lang = res.lang
            post.lang_conf = res.conf
