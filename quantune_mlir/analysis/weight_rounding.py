"""Weight rounding from the calibration data: each int8 layer's weights rounded so that the layer's output, not
its weights, stays closest to FP32 on the FP32 run's inputs.

Rounding every weight to its nearest grid point minimises the weights' own error, but what the network sees is
the error of W x. With the inputs' second moments H = E[x x^T] (over every sample, position and output), the
output error of a weight error D is tr(D H D^T). GPTQ (Frantar et al., "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers", 2022; the optimal brain quantization of Frantar and
Alistarh, 2022) rounds one input column at a time and moves the columns not yet rounded to absorb its error,
through the Cholesky factor of H^-1; a channel where that leaves more output error on the calibration data than
rounding to nearest (GPTQ is greedy) rounds to nearest. The scales stay the plan's (one per output channel, or
one), the values stay within [-127, 127], and no inference is added: H comes from the tensors the FP32 run
returns anyway.

On the real-model bench's all-int8 builds it adds 0.3-1.8 dB of logits SQNR on three of the four models
(docs/benchmarks/2026-12-04-output-referred-score-and-weight-rounding.md).

The rounded weights of a calibration live in one file of the build folder, named by their digest
(build_dir.rounded_weights_name), which the plan gives: a plan is never lowered with another calibration's.
"""
from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..build_dir import rounded_weights_name
from ..errors import QuantuneError
from ..quantization import WEIGHT_RANGE, quantize_weight
from ..rewrite.graph import Layer, int_array

log = logging.getLogger(__name__)

ROUNDINGS = ("gptq", "nearest")
DAMPING = 0.01  # of H's mean diagonal, added to its diagonal: H of a few hundred samples can be singular
GRAM_CHUNK = 8  # samples unfolded at a time


def input_gram(kind: str, x, kernel: tuple[int, int], padding: tuple[int, int, int, int],
               strides: tuple[int, int]) -> np.ndarray:
    """H = sum of x x^T over the layer's input patches (float64): (in, in) for a conv (its im2col columns,
    in the weights' (channel, row, column) order) or a linear layer, (channels, k, k) with k = kernel taps for a
    depthwise conv. x: the layer's input batch (NCHW or NC), padding (top, left, bottom, right)."""
    import torch
    import torch.nn.functional as F
    gram = None
    for chunk in torch.from_numpy(np.ascontiguousarray(x, np.float32)).split(GRAM_CHUNK):
        if kind == "linear":
            rows = chunk.reshape(-1, chunk.shape[-1]).double()
            part = rows.T @ rows
        else:
            top, left, bottom, right = padding
            patches = F.unfold(F.pad(chunk, (left, right, top, bottom)), kernel, stride=strides).double()
            if kind == "depthwise":  # (n, C k, L) -> per channel (C, n L, k)
                n, _, positions = patches.shape
                channels = chunk.shape[1]
                per_channel = patches.reshape(n, channels, -1, positions).permute(1, 0, 3, 2)
                per_channel = per_channel.reshape(channels, n * positions, -1)
                part = per_channel.transpose(1, 2) @ per_channel
            else:
                columns = patches.permute(0, 2, 1).reshape(-1, patches.shape[1])
                part = columns.T @ columns
        gram = part if gram is None else gram + part
    return gram.numpy()


def gptq_round(weight: np.ndarray, scales: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """weight (out, ...) rounded to int8 at scales (one per output channel, or one) by GPTQ against gram, as
    input_gram gives it: (in, in) shared by every output channel, or (out, in, in), one per channel (depthwise)."""
    import torch
    rows = torch.from_numpy(weight.reshape(weight.shape[0], -1).astype(np.float64))
    step = torch.from_numpy(np.broadcast_to(np.asarray(scales, np.float64).reshape(-1), (rows.shape[0],)).copy())
    h = torch.from_numpy(gram.astype(np.float64))
    batched = h.ndim == 3
    if not batched:  # one system for every row: rows (out, in) against h (in, in)
        h = h[None]
    diagonal = torch.diagonal(h, dim1=-2, dim2=-1)
    dead = diagonal == 0  # an input that is always zero: its weight does not matter, round it to nearest
    h = h + torch.diag_embed(DAMPING * diagonal.mean(-1, keepdim=True).expand_as(diagonal) + dead.double())
    upper = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    if not batched:
        upper = upper[0]
    work, rounded = rows.clone(), torch.zeros_like(rows)
    low, high = WEIGHT_RANGE
    for column in range(rows.shape[1]):
        q = torch.clamp(torch.round(work[:, column] / step), low, high)
        rounded[:, column] = q
        pivot = upper[..., column, column]
        error = (work[:, column] - q * step) / pivot
        later = upper[..., column, column + 1:]
        work[:, column + 1:] -= error[:, None] * (later if batched else later[None, :])
    # GPTQ is greedy: on a few channels rounding to nearest leaves less output error; keep the better per channel
    nearest = torch.from_numpy(quantize_weight(weight, np.asarray(scales, np.float64)).reshape(rows.shape)
                               .astype(np.float64))
    data = torch.from_numpy(gram.astype(np.float64))
    better = _output_error(rounded, rows, step, data) <= _output_error(nearest, rows, step, data)
    chosen = torch.where(better[:, None], rounded, nearest)
    return chosen.numpy().astype(np.int8).reshape(weight.shape)


def _output_error(q, rows, step, gram):
    """Per output channel, d H d^T of its weight error d against gram (shared, or one per channel)."""
    import torch
    error = q * step[:, None] - rows
    if gram.ndim == 2:
        return torch.einsum("oi,ij,oj->o", error, gram, error)
    return torch.einsum("oi,oij,oj->o", error, gram, error)


def round_layer(layer: Layer, weight: np.ndarray, scales: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The layer's weights rounded to int8 at scales by GPTQ against its input batch x (before padding)."""
    if layer.kind == "linear":
        gram = input_gram("linear", x, (1, 1), (0, 0, 0, 0), (1, 1))
    else:
        kernel = tuple(weight.shape[-2:])
        padding = (layer.padding[2], layer.padding[3], layer.padding[6], layer.padding[7])
        gram = input_gram(layer.kind, x, kernel, padding, tuple(int_array(layer.op, "strides")))
    return gptq_round(weight, scales, gram)


@dataclass(frozen=True, eq=False)
class RoundedWeights:
    """Per layer id, its int8 weights and the scales they were rounded at."""

    layers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        hasher = hashlib.sha256()
        for layer_id in sorted(self.layers):
            values, scales = self.layers[layer_id]
            hasher.update(layer_id.encode() + b"\0" + np.ascontiguousarray(values).tobytes()
                          + np.ascontiguousarray(scales, np.float64).tobytes())
        return hasher.hexdigest()[:16]

    def int8(self, layer_id: str, weight: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """The layer's int8 weights at scales: the rounded ones where they were rounded at these scales, else
        weight rounded to nearest."""
        stored = self.layers.get(layer_id)
        if stored is not None and stored[0].shape == weight.shape and np.array_equal(
                stored[1], np.asarray(scales, np.float64).reshape(-1)):
            return stored[0]
        return quantize_weight(weight, np.asarray(scales, np.float64))

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        arrays = {}
        for i, (layer_id, (values, scales)) in enumerate(sorted(self.layers.items())):
            arrays.update({f"{i}.id": np.array(layer_id), f"{i}.values": values, f"{i}.scales": scales})
        np.savez_compressed(buffer, **arrays)
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path, digest: str) -> "RoundedWeights":
        """The file's rounded weights, checked against the digest a plan names."""
        try:
            with np.load(path) as data:
                count = len([key for key in data.files if key.endswith(".id")])
                layers = {str(data[f"{i}.id"]): (data[f"{i}.values"].astype(np.int8),
                                                 data[f"{i}.scales"].astype(np.float64)) for i in range(count)}
        except (OSError, ValueError, KeyError) as e:
            raise QuantuneError(f"{path}: cannot read the plan's rounded weights ({e}); run the analysis (or "
                                "`quantune quantize`) again to write them") from None
        found = cls(layers)
        if found.digest != digest:
            raise QuantuneError(f"{path} holds rounded weights {found.digest}, but the plan names {digest}: the "
                                "plan comes from another calibration; run the analysis again, or drop the plan's "
                                "\"rounded_weights\" to round to nearest")
        return found


NEAREST = RoundedWeights()  # every layer rounded to nearest


def plan_rounded_weights(digest: str | None, folder: Path) -> RoundedWeights:
    """The rounded weights a plan names by digest, from the folder that holds them (NEAREST for none)."""
    return NEAREST if digest is None else RoundedWeights.load(folder / rounded_weights_name(digest), digest)
