"""Folding and tokenization: the one definition of a word that both evaluators share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from murmur.text import fold, hashtag_re, is_hashtag, search_text, token_gaps, tokenize, written_hashtags


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Café CAFÉ ＣＡＦＥ cafe", ["cafe", "cafe", "cafe", "cafe"]),
        ("Straße STRASSE", ["strasse", "strasse"]),
        ("Crème Brûlée à l'hôtel", ["creme", "brulee", "a", "l", "hotel"]),
        ("ΟΔΟΣ Αθήνα", ["οδοσ", "αθηνα"]),
        ("İstanbul", ["istanbul"]),
        ("don't covid-19 snake_case", ["don", "t", "covid", "19", "snake", "case"]),
        ("@user <EMAIL> #COP30 https://x.org/a", ["user", "email", "cop30", "https", "x", "org", "a"]),
        ("fun 🎉🎉 times!!!", ["fun", "times"]),
        ("東京タワー", ["東", "京", "タ", "ワ", "ー"]),
        ("서울에서 만나요", ["서", "울", "에", "서", "만", "나", "요"]),
        ("ไก่ทอด", ["ไ", "ก่", "ท", "อ", "ด"]),
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),
        ("مَرْحَبًا بالعالم", ["مرحبا", "بالعالم"]),
        ("iPhone版2020年", ["iphone", "版", "2020", "年"]),
        ("", []),
        ("  ...  ", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_search_text_has_a_space_around_every_token() -> None:
    assert search_text("Hello, World") == " hello world "
    assert search_text("!!!") == " "


def test_scripts_without_spaces_segment_per_character_with_marks_attached() -> None:
    # Thai vowel and tone marks stay with their consonant (NFKC splits SARA AM into NIKHAHIT + SARA AA);
    # Devanagari vowel signs stay in the word.
    assert tokenize("น้ำ") == ["น\u0e49\u0e4d", "\u0e32"]
    assert tokenize("किताब") == ["किताब"]


def test_combining_marks_above_u_ffff_stay_in_their_word() -> None:
    # Brahmi (U+11000 block): vowel signs and virama are marks outside the Basic Multilingual Plane
    # (the tokenizer looks them up apart from the others); a musical combining mark after a letter.
    brahmi = "\U00011013\U00011038\U00011027\U00011046"  # ka + vowel sign aa, pa + virama
    assert tokenize(f"{brahmi} x") == [brahmi, "x"]
    assert tokenize("a\U0001d167b c") == ["a\U0001d167b", "c"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fold_is_idempotent_and_tokens_are_stable(s: str) -> None:
    assert fold(fold(s)) == fold(s)
    toks = tokenize(s)
    assert all(t and " " not in t for t in toks)
    # Re-tokenizing the joined tokens gives them back: a query term written from tokens finds itself.
    assert tokenize(" ".join(toks)) == toks


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_ascii_fast_path_agrees_with_the_general_tokenizer(s: str) -> None:
    from murmur.text import _token_re

    assert tokenize(s) == _token_re().findall(fold(s))


def test_token_gaps_follow_tokenize() -> None:
    assert token_gaps("東京 タワー、凄い") == [True, False, True, False, False, True, False]
    assert token_gaps("a b") == [True, True]
    assert token_gaps("") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_token_gaps_has_one_entry_per_token(s: str) -> None:
    gaps, toks = token_gaps(s), tokenize(s)
    assert len(gaps) == len(toks)
    assert all(gaps[:1])  # the first token counts as apart
    for i in range(1, len(toks)):
        if not gaps[i]:  # written together: the two are one stretch of the folded text
            assert toks[i - 1] + toks[i] in fold(s)


def test_hashtag_bodies_keep_their_combining_marks() -> None:
    assert hashtag_re().findall("दिल्ली में #बाढ़ का खतरा, #น้ำท่วม x#no #ok.") == ["बाढ़", "น้ำท่วม", "ok"]
    for body in ("தமிழ்", "zwnj\u200cword", "cop_30"):
        assert is_hashtag(body), body
    for body in ("a b", "", "a-b"):
        assert not is_hashtag(body), body


def test_written_hashtags_are_hashtag_re_matches() -> None:
    """``written_hashtags`` finds tags with a pattern that starts with the sign (faster): the same
    matches as ``hashtag_re``, at the start of a text, after a word character, a sign or a mark."""
    texts = [
        "#a x#b ##c #_d _#e é#f #\u0301g #\u200dh ＃拡散希望 x＃no #日本 #1 #42x # ＃ #बाढ़ #",
        "#start and end#",
        "a#b#c #d#e ＃f＃g",
        "",
    ]
    for text in texts:
        for t in (text, text.upper(), text.replace(" ", "")):
            assert written_hashtags(t) == [m for m in hashtag_re().findall(t) if not m.isdigit()], t


def test_a_full_width_number_sign_starts_a_hashtag() -> None:
    assert hashtag_re().findall("＃拡散希望 x＃no ＃Tokyo。") == ["拡散希望", "Tokyo"]
    assert fold("＃拡散希望") == "#拡散希望"  # matching folds it to "#"; hashtag reading takes both


def test_variation_selectors_are_folded_away() -> None:
    # the keycap "1️⃣" is 1 + U+FE0F + U+20E3: the number 1, not a word "1\ufe0f"
    assert tokenize("press 1\ufe0f\u20e3 now") == ["press", "1", "now"]
    assert fold("\u2764\ufe0f") == "\u2764"


def test_ideographic_and_mongolian_variation_selectors_are_folded_away() -> None:
    # 葛 + U+E0100 (an ideographic variation sequence, as in the Japanese place name 葛󠄀飾) is 葛:
    # the query 葛飾 finds it; a Mongolian free variation selector goes the same way
    assert tokenize("葛\U000e0100飾区") == ["葛", "飾", "区"]
    assert tokenize("\u182e\u180b\u1823") == ["\u182e\u1823"]


def test_the_shipped_table_of_combining_marks_is_the_unicode_database() -> None:
    # tokenizing relies on every mark (Hindi's vowel signs, Thai's tone marks) being in the table that
    # spares each process its scan of all code points; it was written for one Unicode version
    import json
    import unicodedata

    from murmur.text import MARKS_FILE, mark_ranges, scan_mark_ranges

    table = json.loads(MARKS_FILE.read_text(encoding="utf-8"))
    if table["unicode"] != unicodedata.unidata_version:
        pytest.skip(f"table for Unicode {table['unicode']}, not {unicodedata.unidata_version}: it scans")
    assert mark_ranges() == scan_mark_ranges()
    assert any(lo <= 0x093F <= hi for lo, hi in mark_ranges())  # Devanagari vowel sign I
    assert len(mark_ranges()) > 250
