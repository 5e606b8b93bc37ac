"""Text folding and tokenization: the one definition of "a word" that live matching and historical
search share, so a query cannot find different posts at ingest and over history.

``fold(s)``       NFKC, casefold, drop accents, NFC. ``Café`` → ``cafe``, ``ＣＡＦＥ`` → ``cafe``,
                  ``Straße`` → ``strasse``. Accents are the combining marks of the generic diacritic
                  blocks (U+0300–036F, 1AB0–1AFF, 1DC0–1DFF, 20D0–20FF, FE20–FE2F), the variation
                  selectors (FE00–FE0F, E0100–E01EF, Mongolian 180B–180F), Hebrew points and
                  Arabic harakat; marks that spell a
                  script's vowels (Devanagari, Thai, …) stay.
``tokenize(s)``   the folded text's words, in order:

                  * a character of a script written without spaces (Han, kana, Hangul, Thai, Lao,
                    Khmer, Myanmar) is a token on its own, with its combining marks: a word in those
                    scripts is found as the run of its characters (a phrase of single characters);
                  * any other run of letters, digits and combining marks is a token; everything else
                    (spaces, punctuation, ``_``, symbols, emoji) separates tokens.

``search_text(s)`` the tokens joined as ``" t1 t2 … tn "``: one space before and after every token.
                  A term is then the substring ``" t "``, a phrase ``" t1 t2 "``, a trailing wildcard
                  ``" pre"``. The store keeps this string per post; the live matcher builds it the same
                  way; both test the same substrings and regular expressions against it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path

_ACCENT_RANGES: tuple[tuple[int, int], ...] = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation: the keycap 1️⃣ is the digit 1)
    (0xE0100, 0xE01EF),  # ideographic variation selectors (葛󠄀 in Japanese names is 葛)
    (0x180B, 0x180D),  # Mongolian free variation selectors
    (0x180F, 0x180F),
    (0x0591, 0x05BD),  # Hebrew cantillation and points
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),  # Arabic marks and harakat
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EA, 0x06ED),
)
_ACCENT_POINTS: list[int] = sorted(
    cp
    for lo, hi in _ACCENT_RANGES
    for cp in range(lo, hi + 1)
    if unicodedata.category(chr(cp)).startswith("M")
)

SEGMENTED_BY_CHARACTER: tuple[tuple[int, int], ...] = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul jamo extended-A
    (0xAC00, 0xD7FF),  # Hangul syllables, jamo extended-B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B–H
)
"""Scripts written without spaces between words: one token per character (see module doc)."""


def _class_ranges(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges
    )


def _merge(points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in points:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


_ACCENTS = re.compile(f"[{_class_ranges(_merge(_ACCENT_POINTS))}]")


MARKS_FILE = Path(__file__).resolve().parent / "assets" / "unicode_marks.json"
"""The code points of Unicode category M (combining marks) as ranges, for one Unicode version:
``python -m murmur.text`` writes it for the running Python's. Finding them takes a scan of all
1,114,112 code points (~0.4 s), which every process that tokenizes non-ASCII text (each worker, a
CLI search) would otherwise pay at its first such text."""


def scan_mark_ranges() -> list[tuple[int, int]]:
    """The ranges of category M code points in the running Python's Unicode database (the scan)."""
    cat = unicodedata.category
    return _merge([cp for cp in range(0x110000) if cat(chr(cp))[0] == "M"])


def mark_ranges() -> list[tuple[int, int]]:
    """``scan_mark_ranges()``, from ``MARKS_FILE`` when it was written for this Unicode version."""
    try:
        table = json.loads(MARKS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        table = {}
    if table.get("unicode") != unicodedata.unidata_version:
        return scan_mark_ranges()
    return [(int(lo), int(hi)) for lo, hi in table["ranges"]]


def write_mark_table(path: Path = MARKS_FILE) -> None:
    table = {"unicode": unicodedata.unidata_version, "ranges": scan_mark_ranges()}
    path.write_text(json.dumps(table, separators=(",", ":")) + "\n", encoding="utf-8")


@cache
def _marks() -> str:
    """A pattern for one combining mark (Unicode category M)."""
    bmp: list[tuple[int, int]] = []
    astral: list[tuple[int, int]] = []
    for lo, hi in mark_ranges():  # a range across U+FFFF / U+10000 (none so far) is cut in two
        if lo < 0x10000:
            bmp.append((lo, min(hi, 0xFFFF)))
        if hi >= 0x10000:
            astral.append((max(lo, 0x10000), hi))
    bmp_class, astral_class = _class_ranges(bmp), _class_ranges(astral)
    # Python's re tests a character against a class's marks above U+FFFF (110 ranges) one range at
    # a time, after its table of the rest: so those are tried only for a character above U+FFFF
    # (the same matches; tokenizing non-ASCII text ~30 % faster).
    return rf"(?:[{bmp_class}]|(?=[\U00010000-\U0010FFFF])[{astral_class}])"


@cache
def _token_re() -> re.Pattern[str]:
    marks = _marks()
    seg = _class_ranges(list(SEGMENTED_BY_CHARACTER))
    # A run of letters/digits (not "_", not in a segmented script) and combining marks, starting with
    # a letter or digit; or one segmented-script letter or digit with its marks.
    return re.compile(rf"[^\W_{seg}]+(?:{marks}+[^\W_{seg}]*)*|(?=[^\W_])[{seg}]{marks}*")


HASH_SIGNS = "#\uff03"
"""What starts a hashtag: ``#`` and the full-width ``＃`` (U+FF03) that Japanese and Chinese input
methods type (``＃拡散希望``); Mastodon and Bluesky read both as hashtags. ``fold`` maps ``＃`` to ``#``."""


def may_have_hashtag(s: str) -> bool:
    """Whether ``s`` may hold a hashtag (False means it surely does not). The ``＃`` test costs
    nothing on ASCII and Latin-1 text: such a string cannot hold it."""
    return "#" in s or "\uff03" in s


@cache
def hashtag_re() -> re.Pattern[str]:
    """``#`` or ``＃`` and a hashtag's body (group 1), not preceded by a word character. A body is letters,
    digits, ``_``, combining marks (the vowel signs of Devanagari, Bengali, Tamil, Thai, …: Python's
    ``\\w`` alone stops at them, cutting ``#बाढ़`` to ``#ब``) and the zero-width (non-)joiners that
    Persian and Indic spellings use."""
    return re.compile(rf"(?<!\w)[{HASH_SIGNS}]((?:\w|{_marks()}|[\u200c\u200d])+)")


@cache
def _hashtag_finder() -> re.Pattern[str]:
    """``hashtag_re``, the same matches, with its "not after a word character" test moved behind the
    sign: a pattern that starts with the sign lets ``re`` skip from sign to sign in C instead of
    trying the look-behind at every position (``findall`` 5.3 → 3.3 µs a text with a ``#``)."""
    head = rf"(?<!\w)[{HASH_SIGNS}]"
    pattern = hashtag_re().pattern
    if not pattern.startswith(head):  # the shape this was written for
        msg = f"hashtag_re no longer starts with {head!r}: {pattern[:40]!r}"
        raise AssertionError(msg)
    return re.compile(rf"[{HASH_SIGNS}](?<!\w[{HASH_SIGNS}]){pattern[len(head) :]}")


def is_hashtag(body: str) -> bool:
    """Whether ``body`` (without ``#``) is a whole hashtag body as ``hashtag_re`` reads one."""
    m = hashtag_re().fullmatch("#" + body)
    return m is not None


_HEADING = re.compile(r"^[ \t]{0,3}[#\uff03]+", re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def _markdown_prose(markdown: str) -> str:
    """Markdown without what is no prose: a heading's marks (``#####NOTE:``, ``###edit``: old
    Reddit needs no space after them), code blocks (fenced, or indented four spaces: a Python
    comment ``#authenticating``) and inline code."""
    kept: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and not line.startswith(("    ", "\t")):
            kept.append(line)
    return _INLINE_CODE.sub(" ", _HEADING.sub("", "\n".join(kept)))


def written_hashtags(text: str, *, markdown: bool = False) -> list[str]:
    """The hashtag bodies written in ``text``, in order; a number (``#1``, ``issue #42``) is no tag.
    ``markdown``: the text is Markdown (Reddit's), whose headings and code are skipped. The privacy
    gate and the terms component both read tags this way, so they agree on what is one."""
    if not may_have_hashtag(text):
        return []
    return list(_written_tags(text, markdown))


@lru_cache(maxsize=4096)
def _written_tags(text: str, markdown: bool) -> tuple[str, ...]:
    """``written_hashtags``, remembered for the last few thousand texts with a ``#``: the privacy
    gate reads a post's tags and the terms component reads the same text's again later in the same
    batch (the text itself is held anyway, by the post and by ``content_tokens``' cache)."""
    prose = _markdown_prose(text) if markdown else text
    return tuple(t for t in _hashtag_finder().findall(prose) if not t.isdigit())


_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
"""The same tokens for folded ASCII text (the common case), found faster."""


def fold(s: str) -> str:
    """Case- and accent-fold ``s`` (see module doc). Deterministic; idempotent."""
    if s.isascii():
        return s.lower()
    s = unicodedata.normalize("NFKC", s).casefold()
    # dropped with a regex: fold is ~2x faster than with str.translate
    s = _ACCENTS.sub("", unicodedata.normalize("NFD", s))
    return unicodedata.normalize("NFC", s)


def tokenize(s: str) -> list[str]:
    """The folded tokens of ``s``, in order."""
    folded = fold(s)
    if folded.isascii():
        return _ASCII_TOKEN.findall(folded)
    return _token_re().findall(folded)


def token_gaps(s: str) -> list[bool]:
    """For each of ``tokenize(s)``'s tokens, whether something that is no token (a space,
    punctuation, an emoji) comes right before it, the first token counting as apart:
    ``東京 タワー`` → ``[True, False, True, False, False]``."""
    folded = fold(s)
    pattern = _ASCII_TOKEN if folded.isascii() else _token_re()
    gaps: list[bool] = []
    end = -1
    for m in pattern.finditer(folded):
        gaps.append(m.start() != end)
        end = m.end()
    return gaps


def may_have_markup(s: str) -> bool:
    """Whether ``s`` may hold a link, an @mention or a #hashtag (False means it surely does not): a
    few substring tests, so the text helpers skip their markup regexes for most posts."""
    # "w." is in every "www."
    return "@" in s or "#" in s or "://" in s or "w." in s or "W." in s or "\uff03" in s


def may_have_link(s: str) -> bool:
    """Whether ``s`` may hold a link (``https://…``, ``www.…``; False means it surely does not): so a
    text helper can use its markup regex without the link alternative for most texts."""
    return "://" in s or "w." in s or "W." in s


def search_text(s: str) -> str:
    """``" t1 t2 … tn "`` for the tokens of ``s`` (``" "`` when it has none)."""
    toks = tokenize(s)
    return " " + " ".join(toks) + " " if toks else " "


def is_segmented_char(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in SEGMENTED_BY_CHARACTER)


if __name__ == "__main__":  # python -m murmur.text: rewrite MARKS_FILE for this Python's Unicode
    write_mark_table()
    print(f"{MARKS_FILE}: Unicode {unicodedata.unidata_version}, {len(mark_ranges())} ranges")
