"""How much the network after each int8 layer amplifies the noise at its output, estimated from the same two
runs, so that a layer's local error can be referred to the model's output.

The int8 run carries noise of power A_i (its accumulated MSE) at layer i's output. Layer j, reading it, turns it
into I_j: the MSE of j's FP32 arithmetic on the int8 run's input against the FP32 run (its residual operand taken
from the FP32 run, so that only the input's noise is carried). I_j / A_i is the noise gain from i's output to j's
output, pooling, padding and reshapes on the way included. A residual add passes its operand's noise on
unchanged (gain 1), and a model output ends a path (gain 1). Layer i's gain to the output, G_i, sums the gains
along every path to an output (noise powers add where paths meet), each the product of the steps on it.

This treats noise as small and its propagation as the same for any noise shape: the layer's own noise is
assumed to travel as the noise accumulated up to it does.
"""
from __future__ import annotations

import functools

from .metrics import power_sqnr_db

MIN_NOISE = 1e-30  # an accumulated MSE of zero (a layer whose int8 run matches exactly) divides as this


def output_gains(consumers: dict[str, tuple[tuple[str, str | None], ...]], accumulated_mse: dict[str, float],
                 inherited_mse: dict[str, float]) -> dict[str, float]:
    """G_i for every layer of consumers (rewrite.chains.downstream_consumers): accumulated_mse[i] = A_i and
    inherited_mse[j] = I_j (module docstring)."""

    @functools.cache
    def gain(layer: str) -> float:
        total = 0.0
        for kind, consumer in consumers[layer]:
            if kind == "output":
                total += 1.0
            elif kind == "residual":
                total += gain(consumer)
            else:
                total += inherited_mse[consumer] / max(accumulated_mse[layer], MIN_NOISE) * gain(consumer)
        return total

    return {layer: gain(layer) for layer in consumers}


def output_referred(local: dict[str, tuple[float, float]], gains: dict[str, float], output_power: float
                    ) -> dict[str, tuple[float, float]]:
    """Per layer (SQNR, MSE) of its local noise carried to the output: MSE G_i x local MSE, against the
    output's mean power output_power."""
    return {layer: (power_sqnr_db(output_power, local_mse * gains[layer]), local_mse * gains[layer])
            for layer, (_, local_mse) in local.items()}
