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
   (``romanized_hindustani``: common words, counted); a Croatian or Bosnian answer goes to the
   standard whose own words the text uses more of, a routed text in Latin letters that uses
   Moroccan Arabic's own words is ``ary``, an Arabic answer becomes ``ary`` or ``arq`` (Algerian)
   where the text uses more of one dialect's own words, and an English one that uses Nigerian
   Pidgin's own words is ``pcm`` (``langid_words``).

The combiner's weights (``murmur/assets/models/langid_combiner.npz``) are trained by
``python -m murmur.enrich.train_langid`` on texts other than the measured ones (though lingua's
word pairs are partly cut from the measured sentences: docs/enrichment.md).
Codes are ISO 639-1 where one exists (``iw`` → ``he``, ``no`` → ``nb``, ``zh-Hant`` → ``zh``, ...),
ISO 639-2/3 otherwise (``ceb``, ``haw``, ``pcm``, ``ary``), and ``und`` when there is no linguistic
content or no detector is confident (``min_confidence``). Measured accuracy: docs/enrichment.md.

Here: the detector that runs these steps and the component. The first pass, the cleaning and the
codes are in ``langid_cld2``; the combiner, its candidates and their features in ``langid_combiner``.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from murmur.enrich.langid_batch import batch_langid
from murmur.enrich.langid_cld2 import (
    CONFUSABLE,
    UND,
    Cld2Answer,
    cld2_answer,
    cld2_details,
    clean,
    has_letters,
    iso_code,
    lingua_code_of,
    lingua_codes,
)
from murmur.enrich.langid_combiner import (
    Candidates,
    CodeTable,
    Combiner,
    LinearScorer,
    candidates,
    default_combiner,
    softmax_flat,
    top_k,
)
from murmur.enrich.langid_words import (
    DARIJA_CONF,
    PIDGIN_CONF,
    WORDS_WINDOW,
    croatian_or_bosnian,
    darija_words,
    maghrebi_arabic,
    nigerian_pidgin,
)
from murmur.types import Post

if TYPE_CHECKING:
    from lingua import LanguageDetector as LinguaDetector

log = logging.getLogger(__name__)


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

        codes = lingua_codes()
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
        known = frozenset(c for c in cands if c in lingua_codes())
        if len(known) < 2:
            return {}
        values = self._lingua(known).compute_language_confidence_values(one_script(text))
        code_of = lingua_code_of()
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
        p = softmax_flat(scorer.score(cands.x, lang), cands.sizes)
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

        builder = LanguageDetectorBuilder.from_languages(*lingua_codes().values())
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
            if not has_letters(text):
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
            if (r := results[i]) is None:
                continue
            # romanized Hindi/Urdu: no detector above knows it, so the combiner picked a wrong
            # candidate (CLD2 was sure of one for only 12 of the 502 such XLM-T tweets)
            text = cleaned[i][:WORDS_WINDOW]
            lower = text.lower()
            words = _LETTER_RUN.findall(lower)  # one tokenization for both rules
            if r.lang != "hi" and hindustani_words(words, text):
                results[i] = LangResult("hi", HINDUSTANI_CONF)
            elif r.lang != "ary" and darija_words(words, lower):
                results[i] = LangResult("ary", DARIJA_CONF)  # Arabizi: no detector knows it
            elif r.lang in ("hr", "bs") and (lang := croatian_or_bosnian(r.lang, cleaned[i])) != r.lang:
                results[i] = LangResult(lang, r.conf)  # the standard's own words (both are always routed)
        for i, r in enumerate(results):  # CLD2 is sure of English for most Pidgin texts
            if r is None:
                continue
            if r.lang == "en" and nigerian_pidgin(cleaned[i]):
                results[i] = LangResult("pcm", PIDGIN_CONF)
            elif r.lang == "ar" and (dialect := maghrebi_arabic(cleaned[i])) is not None:
                results[i] = LangResult(dialect, r.conf)
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
    return hindustani_words(_LETTER_RUN.findall(text.lower()), text)


def hindustani_words(words: list[str], text: str) -> bool:
    """``romanized_hindustani(text)``, given the letter runs of the lower-cased text (``words``)."""
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
