"""The shape and element type of a model input, as importers record it and the runtime checks it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"  # numpy's spelling

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.shape))}x{self.dtype}"

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype}
