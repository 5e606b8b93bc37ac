# Minimal stub for the parts of onnxruntime.quantization murmur uses.
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

class QuantType(Enum):
    QInt8 = 0
    QUInt8 = 1

def quantize_dynamic(
    model_input: str | Path,
    model_output: str | Path,
    op_types_to_quantize: Sequence[str] | None = ...,
    per_channel: bool = ...,
    reduce_range: bool = ...,
    weight_type: QuantType = ...,
    nodes_to_quantize: Sequence[str] | None = ...,
    nodes_to_exclude: Sequence[str] | None = ...,
    use_external_data_format: bool = ...,
    extra_options: Mapping[str, Any] | None = ...,
) -> None: ...
