"""Croatian and Bosnian, which CLD2, langid.py and lingua tell apart little better than chance
(lingua's sentences: Croatian 0.780, Bosnian 0.580). They share grammar and most words; their
standards differ in a set of everyday and official words (Croatian *tko, tisuća, tjedan, europski,
kazalište*, Bosnian *ko, hiljada, sedmica, evropski, pozorište*) and in the names of months
(*siječnja, svibnja* against *januara, maja*).

``croatian_or_bosnian(lang, text)`` settles a detector's answer within the pair by counting which standard's
words the text uses (different words, not occurrences), and keeps the answer where the text has
none or as many of each. The lists were written down from the standards, not learned from the
measured sentences; words Bosnian's standard also allows (*uvjet, otok, zrak*) are left out.

The same for Malay and Indonesian was measured and not kept: lingua's Malay sentences use the
Indonesian standard's words far more often than Malay's (docs/enrichment.md).
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
