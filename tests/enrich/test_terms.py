from __future__ import annotations

import re
from typing import Any

import stopwordsiso

from murmur.enrich.terms import (
    _EMOJI,
    _MODIFIERS,
    _PICTOGRAPH,
    MAX_WORD,
    Terms,
    emoji_terms,
    keyphrases,
    stopwords,
    terms_of,
)
from murmur.enrich.text import markup_res, strip_markup
from murmur.text import fold, hashtag_re, written_hashtags
from tests.enrich.conformance import make_post


def terms(text: str, lang: str | None = "en", **kw: Any) -> list[str]:
    post = make_post(text, 0, lang=lang, **kw)
    return terms_of(post)


def test_hashtags_domains_keyphrases_and_emoji() -> None:
    got = terms(
        "Huge crowds at the climate strike in Berlin today 🔥 #FridaysForFuture #Klima https://t.co/x",
        hashtags=["FridaysForFuture"],
        domains=["www.nytimes.com"],
    )
    assert got[:3] == ["#fridaysforfuture", "#klima", "nytimes.com"]
    for t in ("climate", "strike", "climate strike", "berlin", "crowds", "🔥"):
        assert t in got, t
    for stop in ("the", "at", "in", "today", "at the"):
        assert stop not in got, stop
    assert not any("http" in t or "t.co" in t for t in got)


def test_keyphrase_bigrams_never_span_a_stopword() -> None:
    got = list(keyphrases("Minister of health resigns", "en"))
    assert "minister" in got
    assert "health resigns" in got
    assert "minister health" not in got
    assert "minister of" not in got


def test_terms_fold_case_and_accents_like_queries() -> None:
    got = terms("Café CAFÉ café Zürich", lang="de")
    assert got.count("cafe") == 1
    assert "zurich" in got
    assert "cafe zurich" in got


def test_stopwords_follow_the_post_language() -> None:
    got = terms("Le gouvernement annonce une réforme des retraites", lang="fr")
    assert "gouvernement" in got
    assert "reforme retraites" not in got
    assert "retraites" in got
    assert "le" not in got
    assert "des" not in got
    assert "une" not in got


def test_cjk_character_bigrams() -> None:
    got = terms("東京オリンピックの開会式", lang="ja")
    assert "東京" in got
    assert "開会" in got
    assert "会式" in got
    assert "の開" in got or "ク" not in got  # a kana-kanji pair is kept, hiragana-only pairs are not
    zh = terms("我们今天去北京天安门广场", lang="zh")
    assert "北京" in zh
    assert "广场" in zh


def test_arabic_hindi_and_korean_words() -> None:
    ar = terms("أعلنت الحكومة اليوم عن خطة جديدة", lang="ar")
    assert "الحكومة" in ar
    assert "خطة" in ar
    assert "عن" not in ar
    hi = terms("मुझे यह फिल्म बहुत पसंद आई", lang="hi")
    assert "फिल्म" in hi
    assert "यह" not in hi
    ko = terms("한국 영화 정말 좋아요", lang="ko")
    assert "한국" in ko
    assert "영화" in ko


def test_emoji_only_link_only_and_empty() -> None:
    assert terms("😂😂🔥") == ["😂", "🔥"]
    assert terms("https://example.com/a", domains=["example.com"]) == ["example.com"]
    assert terms("") == []


def test_terms_are_capped_and_unknown_language_is_fine() -> None:
    text = " ".join(f"word{i}x" for i in range(500))
    assert len(terms(text, lang=None)) == 64
    comp = Terms(max_terms=5)
    post = make_post(text, lang="und")
    comp.process([post])
    assert post.terms is not None
    assert len(post.terms) == 5


def test_overlong_words_and_hashtags_are_no_terms() -> None:
    blob, tag = "x" * 10_000, "a" * (MAX_WORD + 1)
    got = terms(f"{blob} protest Donaudampfschifffahrtsgesellschaftskapitän #{tag} #ok", hashtags=[tag])
    word = "donaudampfschifffahrtsgesellschaftskapitan"
    assert got == ["#ok", "protest", word, f"protest {word}"]


def test_hashtags_keep_vowel_signs_and_leave_no_fragments() -> None:
    # Python's \w stops at combining marks: "#बाढ़" was cut to "#ब" and its rest became a term.
    hi = terms("दिल्ली में भारी बारिश से बाढ़ का खतरा #बाढ़", lang="hi")
    assert hi[0] == "#बाढ़"
    assert "#ब" not in hi
    assert "ढ़" not in hi
    assert "खतरा ढ़" not in hi
    th = terms("น้ำท่วมหนัก #น้ำท่วม", lang="th")
    assert th[0] == "#" + fold("น้ำท่วม")


def test_character_pairs_never_span_a_space_or_punctuation() -> None:
    ko = terms("서울에서 대규모 시위가 열렸습니다", lang="ko")
    assert "서울" in ko
    assert "대규" in ko
    assert "시위" in ko
    assert "서대" not in ko  # 서울에서 | 대규모
    assert "모시" not in ko
    ja = terms("地震がありました。津波警報", lang="ja")
    assert "津波" in ja
    assert "た津" not in ja
    assert terms("한 국", lang="ko") == ["한", "국"]  # lone characters between spaces are words


def test_flags_and_joined_emoji_are_one_term_each() -> None:
    got = terms("family 👨\u200d👩\u200d👧 flag 🇺🇦🇩🇪 coder 👩🏽\u200d💻 thumbs 👍🏽👍 lone \U0001f1fa")
    emoji = [t for t in got if not t.isascii()]
    assert emoji == ["👨\u200d👩\u200d👧", "🇺🇦", "🇩🇪", "👩\u200d💻", "👍"]


def test_a_hashtag_of_only_marks_or_joiners_is_no_term() -> None:
    # "#" + a combining accent folds to "#": a term that is no hashtag, and invisible ones
    got = terms("x #\u0301 y #\u200d z #ok", hashtags=["#\u0301", "\u200b"])
    assert [t for t in got if t.startswith("#")] == ["#ok"]
    assert terms("#bāḍh_2 #_", lang="und")[:2] == ["#badh_2", "#_"]


def test_a_full_width_hashtag_is_a_hashtag_term_not_keyphrases() -> None:
    # "＃拡散希望" is the hashtag "#拡散希望", as "#拡散希望" is: a term, and its words no keyphrases
    full = terms("地震 ＃拡散希望", lang="ja")
    assert full == terms("地震 #拡散希望", lang="ja")
    assert "#拡散希望" in full
    assert "拡散" not in full


def test_reddit_headings_and_code_are_no_hashtag_terms() -> None:
    # The privacy gate skips them (murmur.text.written_hashtags); terms read the text again and
    # brought '#note' and '#authenticating' back.
    text = "#####NOTE: read the rules\n    #authenticating\nrun `#pragma` then #metoo"
    got = [t for t in terms(text, platform="reddit") if t.startswith("#")]
    assert got == ["#metoo"]
    assert [t for t in terms(text) if t.startswith("#")] == ["#note", "#authenticating", "#pragma", "#metoo"]


def test_stopwords_are_english_and_the_language_s_own_folded() -> None:
    english = {fold(w) for w in stopwordsiso.stopwords("en")}
    for lang, code in (("fr", "fr"), ("de", "de"), ("ja", "ja"), ("nb", "no"), ("ary", "ar"), ("arq", "ar")):
        own = stopwordsiso.stopwords(code)
        assert stopwords(lang) == english | {fold(w) for w in own}, lang
    for unknown in (None, "und", "xx"):
        assert stopwords(unknown) == english


def test_languages_without_a_list_share_the_english_set() -> None:
    # One frozenset per detected language without a stopword list (CLD2 names ~160) held a copy
    # of the English set each: ~27 MB per worker process once they had all turned up.
    assert stopwords("xx") is stopwords("yy") is stopwords("und") is stopwords(None)


def test_warm_up_folds_every_language_s_stopwords() -> None:
    stopwords.cache_clear()
    Terms().warm_up()
    assert stopwords.cache_info().currsize >= len(stopwordsiso.langs())
    misses = stopwords.cache_info().misses
    stopwords("de")
    assert stopwords.cache_info().misses == misses  # loaded before the first batch, not inside it


def test_terms_reuse_the_hashtags_the_gate_read_from_the_same_text() -> None:
    # The gate and the terms component both read a post's written hashtags: the second reading
    # (later in the same batch) is remembered, not parsed again (~3 us a post).
    from murmur.privacy import PrivacyGate
    from murmur.text import _written_tags
    from tests.privacy.test_gate import NOW, draft

    _written_tags.cache_clear()
    text = "#####NOTE: read the rules\n    #authenticating\nFloods again #Klima #1 run `#pragma` then #metoo"
    post = PrivacyGate(key_file=None).apply(draft(platform="reddit", text=text), now=NOW)
    post.lang = "en"
    Terms().process([post])
    assert post.hashtags == ["klima", "metoo"]
    assert [t for t in post.terms or [] if t.startswith("#")] == ["#klima", "#metoo"]
    assert _written_tags.cache_info().misses == 1
    assert _written_tags.cache_info().hits == 1
    written = written_hashtags(post.text, markdown=True)
    written.append("changed")  # a caller's own list: the remembered tags stay as they were
    assert written_hashtags(post.text, markdown=True) == ["Klima", "metoo"]


TRICKY = [
    "a@b @bob x#y #tag ＃拡散希望 #बाढ़ @ # é#é _@x @x.y# #_ ##a @@b #\u0301 #\u200dx",
    "mail me at a.b@c.org or @Some_One. #1 #42x ＃ #日本 #تست @",
    "😂👍🏽🇺🇦👩‍💻🇺 🇦x☀️🀄🈁🏻\U0001f1e5\U0001f3fa\U0001faff👨‍👩‍👧 👍🏽‍🔥 \u200d😂",
    "plain text, no markup at all",
    "",
]


def test_the_fast_markup_and_emoji_regexes_match_the_plain_ones() -> None:
    """The mention/hashtag and emoji regexes are written to start with one character class (fast);
    they find exactly what the plain alternations find."""
    plain_tags = re.compile(r"(?<!\w)@[\w.]+|" + hashtag_re().pattern)
    fast_tags = markup_res()[1]
    plain_emoji = re.compile(
        f"[\U0001f1e6-\U0001f1ff]{{2}}|{_PICTOGRAPH}(?:{_MODIFIERS}*\u200d{_PICTOGRAPH})*"
    )
    for text in TRICKY:
        for t in (text, text.upper(), text.replace(" ", "")):
            assert [m.span() for m in fast_tags.finditer(t)] == [m.span() for m in plain_tags.finditer(t)], t
            assert fast_tags.sub(" ", t) == plain_tags.sub(" ", t) == strip_markup(t), t
            assert [m.span() for m in _EMOJI.finditer(t)] == [m.span() for m in plain_emoji.finditer(t)], t
    assert emoji_terms(TRICKY[2])[:4] == ["😂", "👍", "🇺🇦", "👩‍💻"]


def test_ascii_keyphrases_are_those_of_the_general_path() -> None:
    """An ASCII text takes a shorter loop; a non-ASCII mark that makes no token sends the same words
    through the general one, with the same keyphrases."""
    for text in (
        "Climate strike in Berlin: the 2024 climate strike, again and AGAIN",
        "a an I 42 x1 " + "y" * 64 + " " + "z" * 65 + " go go",
        "the of and",
        "",
    ):
        general = keyphrases(text + " ¡", "en")
        assert keyphrases(text, "en") == general
        assert general or text in ("the of and", "")


def test_hashtag_terms_are_the_same_from_the_cache() -> None:
    post = make_post("#Café #CAFÉ #" + "x" * 65 + " #\u0301", 0, lang="fr", hashtags=["Café", "#Über"])
    first = terms_of(post)
    assert first == terms_of(post)
    assert [t for t in first if t.startswith("#")] == ["#cafe", "#uber"]


def test_non_ascii_keyphrases_with_and_without_unsegmented_scripts() -> None:
    """Texts without a token of an unsegmented script take the shorter loop too; a Thai mark after a
    Latin letter (in a token that does not start with such a character) and half-width katakana
    (folded into the katakana block) take the general one; the same keyphrases either way."""
    assert keyphrases("Grüße aus Köln, Grüße aus Köln 2024", "de") == [
        "grusse",
        "koln",
        "grusse",
        "koln grusse",
        "koln",
    ]
    assert keyphrases("x\u0e31 yz東京 ｶﾀｶﾅ wörd ä", "en") == [
        "x\u0e31",
        "yz",
        "x\u0e31 yz",
        "東京",
        "カタ",
        "タカ",
        "カナ",
        "word",
    ]
