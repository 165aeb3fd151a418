"""The sensitivity list: every layer with its four local metrics and its score, most sensitive first, as the JSON
file (`20_sensitivity.json`) that the policies, the report and the user read."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from ..errors import QuantuneError
from .metrics import LayerMetrics, MetricRatios, sensitivity_scores

SCHEMA_VERSION = 1
# Which activation error the score reads, all from the same two inferences: "accumulated" (the int8 run against
# the FP32 run, as published), "local" (the layer's own int8 arithmetic on the FP32 run's input) and "added" (the
# accumulated error less what the layer inherits: its FP32 arithmetic on the int8 run's input) and "output" (the
# local error times how much the network after the layer amplifies noise: analysis/noise_gain.py)
ACTIVATION_ERRORS = ("accumulated", "local", "added", "output")


@dataclass(frozen=True)
class SensitivityEntry:
    score: float
    metrics: LayerMetrics
    # The activation SQNR of the layer alone: its int8 arithmetic on the FP32 run's input, quantized. The
    # metrics' activation SQNR is the int8 run's, which also carries the error of every int8 layer upstream.
    local_activation_sqnr_db: float | None = None

    @property
    def layer(self) -> str:
        return self.metrics.layer


@dataclass(frozen=True)
class SensitivityList:
    model: str
    ratios: MetricRatios
    entries: tuple[SensitivityEntry, ...]  # most sensitive first; ties keep the model's layer order
    activation_error: str = "accumulated"  # which activation metrics the score read (ACTIVATION_ERRORS)

    @classmethod
    def from_metrics(cls, model: str, metrics: list[LayerMetrics], ratios: MetricRatios = MetricRatios(),
                     errors: dict[str, dict[str, tuple[float, float]]] | None = None,
                     activation_error: str = "accumulated") -> "SensitivityList":
        """errors: per variant ("local", "added"), each layer's activation (SQNR, MSE) by that measure; the score
        reads the activation_error variant's instead of the accumulated ones in metrics."""
        errors = errors or {}
        if activation_error != "accumulated" and activation_error not in errors:
            raise QuantuneError(f"no {activation_error} activation errors to rank by: the analysis computes "
                                f"{', '.join(errors) or 'none'}")
        chosen = errors.get(activation_error, {})
        scored = metrics if activation_error == "accumulated" else [
            replace(m, activation_sqnr_db=chosen[m.layer][0], activation_mse=chosen[m.layer][1]) for m in metrics]
        scores = sensitivity_scores(scored, ratios)
        ranked = sorted(metrics, key=lambda m: -scores[m.layer])
        local = errors.get("local", {})
        return cls(model, ratios, tuple(SensitivityEntry(scores[m.layer], m, local[m.layer][0] if m.layer in local
                                                         else None) for m in ranked), activation_error)

    @property
    def ranked(self) -> list[str]:
        return [entry.layer for entry in self.entries]

    def to_json(self) -> str:
        return json.dumps({"schema_version": SCHEMA_VERSION, "model": self.model, "ratios": asdict(self.ratios),
                           "activation_error": self.activation_error,
                           "layers": [{"score": e.score, **asdict(e.metrics),
                                       "local_activation_sqnr_db": e.local_activation_sqnr_db}
                                      for e in self.entries]}, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "sensitivity list") -> "SensitivityList":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise QuantuneError(f"{source}: not JSON ({e})") from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            found = data.get("schema_version") if isinstance(data, dict) else None
            raise QuantuneError(f"{source}: schema_version {found!r}, this quantune reads {SCHEMA_VERSION}; "
                                "rerun `quantune analyze`")
        names = [f.name for f in fields(LayerMetrics)]
        try:
            entries = tuple(SensitivityEntry(float(layer["score"]), LayerMetrics(**{n: layer[n] for n in names}),
                                             layer.get("local_activation_sqnr_db"))
                            for layer in data["layers"])
            return cls(str(data["model"]), MetricRatios(**data["ratios"]), entries,
                       data.get("activation_error", "accumulated"))
        except (KeyError, TypeError) as e:
            raise QuantuneError(f"{source}: missing or malformed field ({e}); expected model, ratios and layers "
                                f"with score, {', '.join(names)}") from None
