"""The layer table: every quantizable layer of an imported model, keyed by a stable id.

Ids come from the model's own names (the PyTorch module path, or the ONNX weight initializer name), so the
same layer has the same id in every run, plan and report.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import QuantuneError

LAYER_KINDS = ("conv", "depthwise_conv", "linear")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerInfo:
    id: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    params: int
    mlir_op: str = ""

    def __post_init__(self):
        if self.kind not in LAYER_KINDS:
            raise QuantuneError(f"layer '{self.id}': unknown kind '{self.kind}', expected one of {LAYER_KINDS}")


@dataclass(frozen=True)
class LayerTable:
    model: str
    layers: tuple[LayerInfo, ...]

    def __post_init__(self):
        seen: set[str] = set()
        for layer in self.layers:
            if layer.id in seen:
                raise QuantuneError(f"{self.model}: two layers share the id '{layer.id}'")
            seen.add(layer.id)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer_id: str) -> LayerInfo:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise QuantuneError(f"{self.model} has no layer '{layer_id}'; its layers are "
                            f"{', '.join(l.id for l in self.layers[:8])}{' ...' if len(self.layers) > 8 else ''}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(layer.id for layer in self.layers)

    def to_json(self) -> str:
        return json.dumps({"schema_version": SCHEMA_VERSION, "model": self.model,
                           "layers": [asdict(layer) for layer in self.layers]}, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "layer table") -> "LayerTable":
        try:
            data = json.loads(text)
            if data.get("schema_version") != SCHEMA_VERSION:
                raise QuantuneError(f"{source}: schema version {data.get('schema_version')} is not "
                                    f"{SCHEMA_VERSION}; re-run `quantune import`")
            layers = tuple(LayerInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
                           for entry in data["layers"])
            return cls(data["model"], layers)
        except (ValueError, KeyError, TypeError) as e:
            raise QuantuneError(f"{source} is not a quantune layer table ({e}); re-run `quantune import`") from e

    @classmethod
    def load(cls, path: Path) -> "LayerTable":
        return cls.from_json(Path(path).read_text(), str(path))

    def summary(self) -> str:
        rows = [f"{'id':<32} {'kind':<15} {'weight':<18} {'params':>9}  mlir op"]
        rows += [f"{l.id:<32} {l.kind:<15} {'x'.join(map(str, l.weight_shape)):<18} {l.params:>9}  {l.mlir_op}"
                 for l in self.layers]
        return "\n".join(rows)
