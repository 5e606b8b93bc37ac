# Minimal stub for the parts of onnxruntime murmur uses (the package ships no type information).
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

class GraphOptimizationLevel(Enum):
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99

class SessionOptions:
    intra_op_num_threads: int
    inter_op_num_threads: int
    graph_optimization_level: GraphOptimizationLevel
    def __init__(self) -> None: ...

class InferenceSession:
    def __init__(
        self,
        path_or_bytes: str | bytes,
        sess_options: SessionOptions | None = ...,
        providers: Sequence[str] | None = ...,
        provider_options: Sequence[Mapping[str, Any]] | None = ...,
        *,
        disabled_optimizers: Sequence[str] | None = ...,
    ) -> None: ...
    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]: ...

def get_available_providers() -> list[str]: ...
