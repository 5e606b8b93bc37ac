"""Language identification's first pass and what every stage shares: ISO codes (``iso_code``),
CLD2's confusable groups, the cleaning every detector sees (``clean``), CLD2's answers, and lingua's
language codes. The stages and their order: ``murmur.enrich.langid``."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import pycld2

from murmur.text import may_have_link, may_have_markup

if TYPE_CHECKING:
    from lingua import Language as LinguaLanguage

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


def has_letters(text: str) -> bool:
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
def lingua_codes() -> dict[str, LinguaLanguage]:
    from lingua import Language

    return {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}


@cache
def lingua_code_of() -> dict[LinguaLanguage, str]:
    """``lingua_codes`` inverted (a look-up, not three attribute reads, per confidence value)."""
    return {lang: code for code, lang in lingua_codes().items()}
