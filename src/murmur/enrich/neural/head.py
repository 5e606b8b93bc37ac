"""The neural tier's sentiment head: small classifiers on the e5 sentence vector, mixed with the
firehose tier's lexical model.

``p = a · mean(members(e5 vector)) + b · branch(text) + c · lexical(text)`` over (negative, neutral,
positive), where the members are a logistic regression and a few one-hidden-layer MLPs (ReLU,
softmax) on the sentence vector, and the branch is a fine-tuned copy of e5's top layers that shares
the lower layers' forward pass with the embedding (``murmur.enrich.neural.model.SentimentBranch``);
all trained on the XLM-T train splits by ``python -m murmur.enrich.neural.train``; ``a, b, c`` were
chosen on val. The artifact is one ``.npz`` of plain arrays (no pickle): ``e5_sentiment_head.npz``, with its
model card (``e5_sentiment_head.md``, measured per-language scores) beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from murmur.errors import ModelError

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
HEAD_PATH = MODEL_DIR / "e5_sentiment_head.npz"
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def softmax(z: F32 | F64) -> F64:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Dense:
    """One layer ``x @ w + b``."""

    w: F32
    b: F32

    def __call__(self, x: F32) -> F32:
        return np.asarray(x @ self.w + self.b, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Member:
    """A classifier on the (scaled) e5 vector: one layer = logistic regression, two = an MLP."""

    layers: tuple[Dense, ...]
    input_scale: float = 1.0

    def proba(self, x: F32) -> F64:
        """Class probabilities; the products in float32 (float64 took ~3x the time, 65 vs 22 µs a
        post for the shipped members on an AVX2 core, for differences under 2e-7)."""
        h = np.asarray(x, dtype=np.float32) * np.float32(self.input_scale)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                np.maximum(h, 0.0, out=h)
        return softmax(h)


class LexicalModel(Protocol):
    @property
    def languages(self) -> frozenset[str]:
        """The languages its training tweets were in (empty: not known, taken as every language)."""
        ...

    def predict_proba(self, texts: Sequence[str], langs: Sequence[str | None] | None = None) -> F64: ...


UNSEEN_LEXICAL = 0.3
"""The lexical part's weight, instead of the mixture's 0.6, for a post in a language the lexical model
was never trained on (``LexicalModel.languages``) when language identification is sure of it
(``SURE_LANGUAGE``); the e5 parts take the rest in their own proportion. Left out of the training of
the lexical model and of a member, one XLM-T language at a time (``bench/sentiment_unseen.py``), the
lexical model scores 0.40 mean macro-F1 on that language (French 0.22) against the member's 0.55,
and at 0.6 it pulls the mixture to 0.599; at 0.3 the mixture scores 0.629, at 0 0.633. 0.3 rather
than 0, because on the two AfriSenti languages without training tweets (Oromo, Tigrinya) emoji and
punctuation still carry across: 0.424 and 0.458 at 0.3 against 0.412 and 0.464 at 0.6. On XLM-T val
and AfriSenti dev (posts whose language is misdetected as an unseen one) the means do not move:
0.6468 and 0.5747 against 0.6468 and 0.5746 (docs/enrichment.md, "Languages the lexical model never
saw")."""
SURE_LANGUAGE = 0.7
"""Language identification's confidence from which ``UNSEEN_LEXICAL`` applies: below it the detected
language is too often wrong (romanized Hindi named Somali or Malay at ~0.5), and the lexical model
may well know the text's real language."""


@dataclass(frozen=True, slots=True)
class Mix:
    """Weights of the three probability sources; they sum to 1."""

    members: float
    branch: float
    lexical: float


@dataclass(slots=True)
class E5Head:
    members: list[Member]
    mix: Mix = field(default_factory=lambda: Mix(1.0, 0.0, 0.0))
    branch: dict[str, npt.NDArray[Any]] | None = None
    """Arrays of the fine-tuned sentiment branch (``SentimentBranch.arrays()``), if trained."""
    meta: dict[str, Any] = field(default_factory=dict)

    def combine(
        self,
        p_members: F64,
        p_branch: F64 | None,
        p_lexical: F64 | None,
        unseen: npt.NDArray[np.bool_] | None = None,
    ) -> F64:
        """The shipped mixture; a source that is absent must have weight 0. Rows marked ``unseen``
        (a language the lexical model was not trained on) give the lexical part ``UNSEEN_LEXICAL``
        at most, and the e5 parts the rest in their own proportion."""
        e5 = self.mix.members * p_members + self._part(self.mix.branch, p_branch, "branch")
        lexical = self.mix.lexical
        p = e5 + self._part(lexical, p_lexical, "lexical")
        if unseen is not None and p_lexical is not None and UNSEEN_LEXICAL < lexical < 1 and unseen.any():
            scale = (1.0 - UNSEEN_LEXICAL) / (1.0 - lexical)
            p[unseen] = scale * e5[unseen] + UNSEEN_LEXICAL * p_lexical[unseen]
        return np.asarray(p, dtype=np.float64)

    @staticmethod
    def _part(weight: float, part: F64 | None, name: str) -> F64 | float:
        """``weight · part``: 0 for a source of weight 0, which may be absent."""
        if weight <= 0:
            return 0.0
        if part is None:
            msg = f"e5 sentiment head: the {name} probabilities are needed (weight {weight})"
            raise ModelError(msg)
        return weight * part

    def branch_module(self, heads: int, eps: float, dtype: Any) -> Any:
        """The sentiment branch as a PyTorch module (``None`` when the head has none)."""
        if self.branch is None:
            return None
        from murmur.enrich.neural.model import SentimentBranch

        return SentimentBranch.from_arrays(self.branch, heads, eps, dtype)

    def proba_e5(self, vectors: F32 | F64) -> F64:
        """The e5 members' mean probabilities, ``[n, 3]``."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or (len(x) and x.shape[1] != self.dim):
            msg = f"e5 sentiment head: expected vectors of shape [n, {self.dim}], got {x.shape}"
            raise ModelError(msg)
        if len(x) == 0:
            return np.zeros((0, 3), dtype=np.float64)
        return np.asarray(np.mean([m.proba(x) for m in self.members], axis=0), dtype=np.float64)

    @property
    def dim(self) -> int:
        return int(self.members[0].layers[0].w.shape[0])

    def save(self, path: Path) -> None:
        arrays: dict[str, npt.NDArray[Any]] = {}
        spec = []
        for i, m in enumerate(self.members):
            spec.append({"layers": len(m.layers), "input_scale": m.input_scale})
            for j, layer in enumerate(m.layers):
                arrays[f"m{i}.l{j}.w"] = layer.w.astype(np.float32)
                arrays[f"m{i}.l{j}.b"] = layer.b.astype(np.float32)
        if self.branch is not None:
            for name, arr in self.branch.items():
                big = arr.size > 1000  # transformer weights: fp16 is plenty and halves the artifact
                arrays[f"branch.{name}"] = arr.astype(np.float16 if big else np.float32)
        mix = {"members": self.mix.members, "branch": self.mix.branch, "lexical": self.mix.lexical}
        meta = {**self.meta, "members": spec, "mix": mix}
        arrays["meta"] = np.array(json.dumps(meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path = HEAD_PATH) -> E5Head:
        if not path.exists():
            msg = (
                f"e5 sentiment head not found at {path}; train it with "
                "`python -m murmur.enrich.neural.train` (needs ../shared/data)"
            )
            raise ModelError(msg)
        with np.load(path, allow_pickle=False) as z:
            meta: dict[str, Any] = json.loads(str(z["meta"]))
            members = [
                Member(
                    tuple(Dense(z[f"m{i}.l{j}.w"], z[f"m{i}.l{j}.b"]) for j in range(int(spec["layers"]))),
                    float(spec["input_scale"]),
                )
                for i, spec in enumerate(meta.pop("members"))
            ]
            # kept as stored (fp16 for the big matrices) until a module is built from them
            branch = {k.removeprefix("branch."): z[k] for k in z.files if k.startswith("branch.")}
        mix = meta.pop("mix", None)
        if not isinstance(mix, dict):
            msg = (
                f"{path} was written by an older murmur (no mixture weights); "
                "retrain it with `python -m murmur.enrich.neural.train`"
            )
            raise ModelError(msg)
        return cls(
            members,
            Mix(float(mix["members"]), float(mix["branch"]), float(mix["lexical"])),
            branch or None,
            meta,
        )


@cache
def default_head() -> E5Head:
    return E5Head.load(HEAD_PATH)


def lexical_model() -> LexicalModel:
    """The firehose tier's lexical model (``murmur.enrich.lexical``), loaded once per process."""
    try:
        from murmur.enrich.lexical import default_model
    except ImportError as exc:
        msg = f"the e5 sentiment head mixes in the lexical model, which cannot be imported: {exc}"
        raise ModelError(msg) from None
    return default_model()
