"""Word-list rules that follow the detectors, for what CLD2, langid.py and lingua do not know or cannot
tell apart, recognized by the language's own common words (written down, not learned):

* **Croatian or Bosnian** (``croatian_or_bosnian``). The detectors tell the two standards apart
  little better than chance (lingua's sentences: Croatian 0.780, Bosnian 0.580). They share grammar
  and most words; their standards differ in a set of everyday and official words (Croatian *tko,
  tisuća, tjedan, europski, kazalište*, Bosnian *ko, hiljada, sedmica, evropski, pozorište*) and in
  the names of months (*siječnja, svibnja* against *januara, maja*). An answer of either goes to
  the standard whose words the text uses more of (different words, not occurrences), and stands
  where the text has none or as many of each. Words Bosnian's standard also allows (*uvjet, otok,
  zrak*) are left out. The same for Malay and Indonesian was measured and not kept: lingua's Malay
  sentences use the Indonesian standard's words far more often than Malay's (docs/enrichment.md).
* **Nigerian Pidgin** (``nigerian_pidgin``), which every detector calls English (1,261 of the 1,281
  AfriSenti dev tweets): an English answer becomes ``pcm`` where the text has two of Pidgin's own
  words (*dey, wey, una, abeg, wetin, sabi, wahala, ...*), or one of them and one of its function
  words that are also short words elsewhere (*na, don, dem, im, wan, ...*: German *im*, Hausa and
  Igbo *na*, English *don't* are why these do not count alone).
* **Moroccan Arabic in Latin letters** (``moroccan_darija``: "Arabizi", with 3, 7 and 9 for ع, ح
  and ق), which no detector knows: they scatter it over Somali, Malay, English, Swahili, French,
  Welsh, ... (213 of AfriSenti's 494 Moroccan dev tweets are written so). A routed text that holds
  two different words of Darija's own (*dyal, ghir, bzaf, kayn, hadchi, wakha, 3la, m3a, ...*), or
  one of them and one of its words that other languages have too (*li, f, chi, had, wach, daba,
  safi, lah*, or an Arabizi word such as *sa7bi*: Twi writes ɛ as 3), is ``ary``.
* **Moroccan and Algerian Arabic in Arabic letters** (``maghrebi_arabic``): an Arabic answer is
  ``ary`` or ``arq`` where the text uses more of one dialect's own words than of the other's.
"""

from __future__ import annotations

import re

_CROATIAN = """tko tisuća tisuće tisuću glazba glazbe obitelj obitelji kruh vlak zrakoplov nogomet nogometni
    povijest povijesti znanost znanosti sveučilište sveučilišta tijekom točno točka kava tjedan tjedna
    tjedno izvješće tvrtka tvrtke poduzeće kazalište europski europske europskoj europa europe europi
    jučer siječnja veljače ožujka travnja svibnja lipnja srpnja kolovoza rujna listopada studenoga
    prosinca siječanj veljača ožujak travanj svibanj lipanj srpanj kolovoz rujan listopad prosinac"""
_BOSNIAN = """ko hiljada hiljade hiljadu muzika muzike porodica porodice hljeb voz fudbal fudbalski historija
    historije nauka nauke univerzitet univerziteta tokom tačno tačka kahva kafa uslov uslovi uslova
    ostrvo ostrva vazduh sedmica sedmice sedmično izvještaj firma firme preduzeće pozorište evropski
    evropske evropskoj evropa evrope evropi juče januar januara februar februara mart marta maj maja
    juni juna juli jula august augusta septembar septembra oktobar oktobra novembar novembra decembar
    decembra šta opšti uopšte takođe sahat lahko"""
CROATIAN_WORDS: frozenset[str] = frozenset(_CROATIAN.split())
BOSNIAN_WORDS: frozenset[str] = frozenset(_BOSNIAN.split())
"""Words of each standard that the other does not use (a hit counts once per text)."""

_WORD = re.compile(r"[^\W\d_]+")
WORDS_WINDOW = 500
"""Characters of a text that the romanized-Hindustani, Darija and Maghrebi rules read."""


def croatian_or_bosnian(lang: str, text: str) -> str:
    """``lang``, or, for ``hr`` or ``bs``, the standard whose words ``text`` (cleaned) uses more of:
    the answer stands where the text has none or as many of each."""
    if lang not in ("hr", "bs"):
        return lang
    words = set(_WORD.findall(text.lower()))
    hr, bs = len(words & CROATIAN_WORDS), len(words & BOSNIAN_WORDS)
    return "hr" if hr > bs else "bs" if bs > hr else lang


_PIDGIN = "dey wey una abeg wetin pikin sabi comot wahala sef abi shey oya joor jare wia"
PIDGIN_WORDS: frozenset[str] = frozenset(_PIDGIN.split())
"""Nigerian Pidgin's own words: the copula and progressive *dey*, the relative *wey*, *una* (you,
plural), *abeg* (please), *wetin* (what), ..."""
_PIDGIN_FUNCTION = "na don dem dis dat im wan sey"
PIDGIN_FUNCTION_WORDS: frozenset[str] = frozenset(_PIDGIN_FUNCTION.split())
"""Pidgin's function words that are also words of other languages: they count only beside one of
``PIDGIN_WORDS``."""
PIDGIN_CONF = 0.9
"""The ``lang_conf`` of a Pidgin answer: of the 87,155 texts of our labelled sets answered English,
the rule fired on none of the English ones (XLM-T, TweetEval, lingua) and on 40 Nigerian and Ghanaian
tweets of AfriSenti's Twi, Igbo, Hausa and Yoruba sets, which mix in Pidgin."""


_PIDGIN_ANYWHERE = re.compile("|".join(sorted(PIDGIN_WORDS)))
"""Any of ``PIDGIN_WORDS`` inside any word: a cheap first test (one scan in C) that ~95 % of English
posts fail, before the words are counted."""
PIDGIN_WINDOW = 300
"""Characters of a text read for Pidgin's words: a tweet's length, which bounds the cost on long posts."""


def nigerian_pidgin(text: str) -> bool:
    """Whether ``text`` (cleaned; language ID said English) is Nigerian Pidgin: two different
    ``PIDGIN_WORDS``, or one and one of ``PIDGIN_FUNCTION_WORDS``, in its first ``PIDGIN_WINDOW``
    characters."""
    lower = text[:PIDGIN_WINDOW].lower()
    if _PIDGIN_ANYWHERE.search(lower) is None:
        return False
    words = set(_WORD.findall(lower))
    own = len(words & PIDGIN_WORDS)
    return own >= 2 or (own == 1 and not words.isdisjoint(PIDGIN_FUNCTION_WORDS))


_DARIJA = """ghir 3la m3a dyal dial dyali dyalo dyalna dyalek 3lik hna hta 7ta dima ghadi howa wla fih fiha
    dakchi kolchi hadchi rah kayn kayna kaynin 3lach alach wakha momkin wahd wa7d wahed wahad bghit
    bghiti bghina baghi baghin liha lih lihom bzaf bzzaf ga3 3liha 3lih 3lina 3lihom hadik hadak hadok
    bhal b7al 7na 3ad zwin zwina m3ak m3aha m3ah m3aya m3ahom ba9i lmaghrib lmghrib lmghreb maghribi
    maghribiya mgharba lmgharba akhti khti khoya yalah ndir chno chnou chnu lmohim mli knt bladi nhar
    7it walah wlah wa9t kamlin chkoun 3afak mzyan mzyana mezyan mezyana mzn walakin kifach kifash
    3ala chokran bnadm bnadem dayman mskin meskin imta a7la chhal khayb khayba ta3ni 3andi 3ndi 3ndek
    kanbghi kanbghik tbarkallah"""
DARIJA_WORDS: frozenset[str] = frozenset(_DARIJA.split())
"""Moroccan Arabic's own words as its Latin-script writers spell them: the tokens most typical of
AfriSenti's Moroccan *train* tweets against ~250,000 texts of other languages, less personal names and
the words some other language has (Igbo and Twi *nti*, Kinyarwanda *nta*, Igbo *ghi*, Twi *ntoma*)."""
_DARIJA_SHARED = """li f w chi ila hadi hada fin ach walo wala bla machi homa hiya hya daba safi lah lik
    rak bach dak dik kol had wach kan ana allah llah wallah inchallah hamdoulah"""
DARIJA_SHARED_WORDS: frozenset[str] = frozenset(_DARIJA_SHARED.split())
"""Darija's words that other languages have too (English *had*, German *wach*, Malay *lah*, Swahili
*safi*): they count only beside one of ``DARIJA_WORDS``."""
_ARABIZI = re.compile(r"[a-z]+[379][a-z]+|[379][a-z]{2,}")
"""A word with 3, 7 or 9 for an Arabic letter (*sa7bi, l9arar, 3rafto*): counts as a shared word."""
DARIJA_CONF = 0.9
"""The ``lang_conf`` of a Darija answer (as Pidgin's)."""
_ARABIZI_DIGIT = re.compile(r"[379]")
_ARABIZI_PAIR = re.compile(r"[a-z][379]|[379][a-z]")
"""How each of ``DARIJA_WORDS`` written with a digit (*3la, m3a, wa7d*) shows in a text."""
_ALNUM_RUN = re.compile(r"[^\W_]+")
"""A word of letters and digits: Arabizi writes letters as digits."""
DARIJA_LETTER_WORDS: frozenset[str] = frozenset(w for w in DARIJA_WORDS if w.isalpha())


def moroccan_darija(text: str) -> bool:
    """Whether ``text`` (cleaned; routed past CLD2; language identification reads its first 500
    characters) is Moroccan Arabic in Latin letters: two different ``DARIJA_WORDS``, or one and a
    shared word (``DARIJA_SHARED_WORDS`` or an Arabizi word of at most 12 characters)."""
    lower = text.lower()
    return darija_words(_WORD.findall(lower), lower)


def darija_words(letter_runs: list[str], lower: str) -> bool:
    """``moroccan_darija`` of the lower-cased text ``lower``, given its letter runs (which language
    identification has already cut for romanized Hindustani). Nearly every text has none of
    Darija's words in letters (one set test in C) and no 3, 7 or 9 beside a letter (two scans in C),
    so none of its words: only the others are cut again, into words of letters and digits."""
    if DARIJA_LETTER_WORDS.isdisjoint(letter_runs) and (
        _ARABIZI_DIGIT.search(lower) is None or _ARABIZI_PAIR.search(lower) is None
    ):
        return False
    words = set(_ALNUM_RUN.findall(lower))
    own = len(words & DARIJA_WORDS)
    if own != 1:
        return own >= 2
    return not words.isdisjoint(DARIJA_SHARED_WORDS) or any(
        len(w) <= 12 and _ARABIZI.fullmatch(w) and w not in DARIJA_WORDS for w in words
    )


_MOROCCAN_ARABIC = (
    "ديال ديالي ديالو ديالنا غادي كيفاش جوج بحال كلشي دابا دبا ديما حيت بغينا بغيت هادشي فهاد مزيان مزيانة"
)
MOROCCAN_ARABIC_WORDS: frozenset[str] = frozenset(_MOROCCAN_ARABIC.split())
"""Moroccan Arabic's own (*dyal* of, *ghadi* will, *kifach* how, *jouj* two, *daba* now, ...)."""
_ALGERIAN_ARABIC = """علابالي ماعلاباليش وعلاه وقتاش مزية زعما واقيلا واقيل ماكاش بصح كاش بلي راني راك راكي
    راهي برك كيما تاع امبعد لوكان ضرك"""
ALGERIAN_ARABIC_WORDS: frozenset[str] = frozenset(_ALGERIAN_ARABIC.split())
"""Algerian Arabic's own (*3labali* I know, *wa9tach* when, *bessah* but, *kach* any, *rani* I am,
*ta3* of, *dorka* now, ...)."""


def maghrebi_arabic(text: str) -> str | None:
    """``ary`` or ``arq`` for a text (cleaned; language identification said Arabic) in Moroccan or
    Algerian Arabic: the dialect whose own words (different ones, in its first 500 characters) it
    uses more of. None otherwise: none of either (Modern Standard Arabic, other dialects, or
    Maghrebi Arabic in words both dialects share, such as *bzaf* and *wach*) or as many of each."""
    words = set(_WORD.findall(text[:WORDS_WINDOW]))
    ary, arq = len(words & MOROCCAN_ARABIC_WORDS), len(words & ALGERIAN_ARABIC_WORDS)
    return "ary" if ary > arq else "arq" if arq > ary else None
