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
