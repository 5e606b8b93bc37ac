"""A user-chosen Hugging Face sequence-classification model as murmur's sentiment model, offline.

``TransformerSentimentModel("cardiffnlp/twitter-xlm-roberta-base-sentiment")`` loads a model that is
already on this machine — a local directory, or a name in the Hugging Face cache — and never
touches the network (``HF_HUB_OFFLINE=1`` and ``local_files_only``). murmur does not download
models: fetch one elsewhere (``hf download NAME``) and copy the directory or cache over.

* CPU: ONNX Runtime. The model is exported once (``input_ids``, ``attention_mask`` → ``logits``)
  and cached under murmur's cache dir (``MURMUR_CACHE_DIR`` or ``~/.cache/murmur``), keyed by a
  hash of the model's files.
* GPU: PyTorch in bf16.

Texts are sorted by length and cut into batches (little padding). The model's labels are mapped to
murmur's (negative, neutral, positive) by name (``config.id2label``: ``negative``/``neg``/``LABEL_0``
style names are not guessed — give ``label_map`` for those). A two-class model leaves neutral at 0.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from murmur.cache import cache_root, replacing
from murmur.errors import ModelError
from murmur.types import Post, SentimentLabel

log = logging.getLogger(__name__)

LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")
EXPORT_RECIPE = "hf-seqcls-fp32-opset17-v1"
F64 = npt.NDArray[np.float64]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_NAME_TO_LABEL: dict[str, SentimentLabel] = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}


def _offline() -> None:
    # huggingface_hub reads this when it is first imported; local_files_only covers a late import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def encodable(text: str) -> str:
    """``text`` with any lone surrogate as U+FFFD: the Rust tokenizers reject a string that cannot be
    UTF-8 (``TypeError: TextEncodeInput must be ...``), which failed the whole batch."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def label_columns(
    id2label: Mapping[int, str], label_map: Mapping[str, SentimentLabel] | None = None
) -> list[int]:
    """For each model output, the column of murmur's (negative, neutral, positive) it feeds."""
    cols: list[int] = []
    for i in range(len(id2label)):
        name = id2label[i]
        label = (label_map or {}).get(name) or _NAME_TO_LABEL.get(name.strip().lower())
        if label is None:
            msg = (
                f"transformer model output {i} is labelled {name!r}, which murmur cannot map to "
                "negative/neutral/positive; pass label_map={...} naming each label"
            )
            raise ModelError(msg)
        cols.append(LABELS.index(label))
    if "negative" not in {LABELS[c] for c in cols} or "positive" not in {LABELS[c] for c in cols}:
        msg = f"transformer model labels {dict(id2label)} must include a negative and a positive class"
        raise ModelError(msg)
    return cols


def resolve_model_dir(model: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A local directory as is, or a model-hub name looked up in the local Hugging Face cache only."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            msg = f"{path} is not a Hugging Face model directory (no config.json)"
            raise ModelError(msg)
        return path
    _offline()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        found = snapshot_download(
            str(model), cache_dir=str(cache_dir) if cache_dir else None, local_files_only=True
        )
    except (LocalEntryNotFoundError, OSError, ValueError) as exc:
        msg = (
            f"transformer model {str(model)!r} is neither a directory nor in the local Hugging Face cache "
            f"({exc.__class__.__name__}). murmur never downloads models: run `hf download {model}` on a "
            "machine with network access and copy the cache (or the directory) here"
        )
        raise ModelError(msg) from None
    return Path(found)


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256(EXPORT_RECIPE.encode())
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".model", ".txt"}:
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def _max_tokens(config: Any, tokenizer: Any) -> int:
    """How many tokens (specials included) one input may have."""
    limit = int(getattr(config, "max_position_embeddings", 0) or 512)
    if "roberta" in str(getattr(config, "model_type", "")) or "camembert" in str(
        getattr(config, "model_type", "")
    ):
        limit -= int(getattr(config, "pad_token_id", 1) or 0) + 1  # RoBERTa positions start after padding_idx
    tok_limit = int(getattr(tokenizer, "model_max_length", limit) or limit)
    return max(2, min(limit, tok_limit))


class TransformerSentimentModel:
    """``predict_proba(texts) -> [n, 3]`` (negative, neutral, positive) from a sequence classifier."""

    def __init__(
        self,
        model: str | Path,
        *,
        backend: Literal["auto", "onnx", "torch"] = "auto",
        device: str | None = None,
        hf_cache_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        label_map: Mapping[str, SentimentLabel] | None = None,
        max_length: int = 128,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.options: dict[str, Any] = {
            "backend": backend,
            "device": device,
            "hf_cache_dir": hf_cache_dir,
            "cache_dir": cache_dir,
            "label_map": dict(label_map) if label_map is not None else None,
            "max_length": max_length,
            "max_batch_tokens": max_batch_tokens,
        }
        """The keyword arguments this model was built with (``TransformerSentiment`` pickles them)."""
        _offline()
        import torch
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.name = str(model)
        self.path = resolve_model_dir(model, hf_cache_dir)
        if device is None:
            device = "cuda" if backend != "onnx" and torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if backend == "auto":
            backend = "torch" if self.device.type == "cuda" else "onnx"
        if backend == "onnx" and self.device.type != "cpu":
            msg = f"transformer backend 'onnx' runs on CPU only (device {device!r}); use backend='torch'"
            raise ModelError(msg)
        self.backend: Literal["onnx", "torch"] = backend
        try:
            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
            self.tokenizer: Any = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as exc:
            msg = (
                f"cannot load the tokenizer/config of transformer model {self.name!r} from {self.path}: {exc}"
            )
            raise ModelError(msg) from None
        id2label = {int(k): str(v) for k, v in config.id2label.items()}
        self.columns = label_columns(id2label, label_map)
        self.max_length = min(max_length, _max_tokens(config, self.tokenizer))
        on_gpu = self.device.type == "cuda"
        self.max_batch_tokens = max_batch_tokens or (65536 if on_gpu else 4096)
        self._torch_model: Any = None
        self._session: Any = None
        if backend == "torch":
            self._torch_model = self._load_torch(torch.bfloat16 if on_gpu else torch.float32).to(self.device)
        else:
            self._session = self._load_onnx(cache_dir)

    # --- loading ----------------------------------------------------------------------------------
    def _load_torch(self, dtype: Any) -> Any:
        from transformers import AutoModelForSequenceClassification

        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                self.path, local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError) as exc:
            msg = f"cannot load transformer model {self.name!r} from {self.path}: {exc}"
            raise ModelError(msg) from None
        return model.eval()

    def _load_onnx(self, cache_dir: str | Path | None) -> Any:
        import onnxruntime as ort

        root = Path(cache_dir) if cache_dir is not None else cache_root()
        target = root / "transformers" / f"{_dir_digest(self.path)}.onnx"
        if not target.exists():
            log.info("exporting %s to ONNX once: %s", self.name, target)
            self._export(target)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])

    def _export(self, target: Path) -> None:
        import torch

        model = self._load_torch(torch.float32)
        sample = self.tokenizer(["murmur", "murmur export"], padding=True, return_tensors="pt")
        try:
            with replacing(target) as tmp, warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # tracer and exporter deprecation notices
                torch.onnx.export(
                    model,
                    (sample["input_ids"], sample["attention_mask"]),
                    tmp,
                    dynamo=False,
                    input_names=["input_ids", "attention_mask"],
                    output_names=["logits"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "logits": {0: "batch"},
                    },
                    opset_version=17,
                )
        except OSError as exc:
            msg = f"cannot write the ONNX cache {target}: {exc}; set MURMUR_CACHE_DIR to a writable folder"
            raise ModelError(msg) from None
        finally:
            del model
            gc.collect()

    # --- inference --------------------------------------------------------------------------------
    def logits(self, texts: Sequence[str]) -> F64:
        """Raw model logits ``[n, num_labels]`` in the model's own label order."""
        n = len(texts)
        if n == 0:
            return np.zeros((0, len(self.columns)), dtype=np.float64)
        enc = self.tokenizer(
            [encodable(t) for t in texts],
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        )
        ids: list[list[int]] = enc["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((n, len(self.columns)), dtype=np.float64)
        pad = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        start = 0
        while start < n:
            end = start + 1
            while end < n and (end - start + 1) * int(lengths[order[end]]) <= self.max_batch_tokens:
                end += 1
            rows = order[start:end]
            width = int(lengths[rows[-1]])
            batch_ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows.tolist()):
                batch_ids[r, : lengths[i]] = ids[i]
                mask[r, : lengths[i]] = 1
            out[rows] = self._run(batch_ids, mask)
            start = end
        return out

    def _run(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> F64:
        if self._session is not None:
            (logits,) = self._session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            return np.asarray(logits, dtype=np.float64)
        import torch

        with torch.inference_mode():
            t_ids = torch.from_numpy(ids).to(self.device)
            t_mask = torch.from_numpy(mask).to(self.device)
            logits = self._torch_model(input_ids=t_ids, attention_mask=t_mask).logits
            return np.asarray(logits.float().cpu().numpy(), dtype=np.float64)

    def predict_proba(self, texts: Sequence[str]) -> F64:
        """``[n, 3]`` probabilities of (negative, neutral, positive)."""
        z = self.logits(texts)
        z -= z.max(axis=1, keepdims=True) if len(z) else 0.0
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for j, col in enumerate(self.columns):
            out[:, col] += p[:, j]
        return out


class TransformerSentiment:
    """``murmur.sentiment.transformer@1``: sentiment from a user-chosen model-hub classifier.

    ``sentiment_model`` records the component and the model, e.g.
    ``murmur.sentiment.transformer@1:cardiffnlp/twitter-xlm-roberta-base-sentiment``."""

    name = "murmur.sentiment.transformer@1"
    requires: frozenset[str] = frozenset()
    assigns: frozenset[str] = frozenset({"sentiment", "sentiment_score", "sentiment_model"})

    def __init__(self, model: str | Path | TransformerSentimentModel, **options: Any) -> None:
        self._model = model if isinstance(model, TransformerSentimentModel) else None
        self._spec = model.name if isinstance(model, TransformerSentimentModel) else str(model)
        # a pickled copy rebuilds the model as it was built: a model object's options, not the defaults
        self._options = model.options if isinstance(model, TransformerSentimentModel) else options

    @property
    def model(self) -> TransformerSentimentModel:
        if self._model is None:
            self._model = TransformerSentimentModel(self._spec, **self._options)
        return self._model

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self._spec, "options": self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._spec = state["spec"]
        self._options = state["options"]
        self._model = None

    def process(self, posts: Sequence[Post]) -> None:
        if not posts:
            return
        proba = self.model.predict_proba([p.text for p in posts])
        label = f"{self.name}:{self._spec}"
        for post, row in zip(posts, proba.tolist(), strict=True):
            post.sentiment = LABELS[max(range(3), key=row.__getitem__)]
            post.sentiment_score = round(row[2] - row[0], 4)
            post.sentiment_model = label
