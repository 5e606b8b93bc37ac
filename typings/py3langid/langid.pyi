# Minimal stub for py3langid 0.4.0 (no type information shipped).
from array import array
from pathlib import Path

import numpy as np
import numpy.typing as npt

MODEL_FILE: str
MODEL_DIR: Path

class LanguageIdentifier:
    nb_classes: list[str]
    nb_ptc: npt.NDArray[np.float16]
    nb_pc: npt.NDArray[np.float32]
    tk_nextmove: array[int]
    tk_output: list[int]
    _rowbase: list[int]
    _alias_pairs: list[tuple[int, int]]
    @classmethod
    def from_model_file(
        cls, model_file: str | Path, norm_probs: bool = ..., min_confidence: float | None = ...
    ) -> LanguageIdentifier: ...
    def set_languages(self, langs: list[str] | None = ...) -> None: ...
    def classify(self, text: str | bytes) -> tuple[str, float]: ...
    def rank(self, text: str | bytes) -> list[tuple[str, float]]: ...
    def _decide(self, text: str | bytes) -> npt.NDArray[np.float32]: ...
