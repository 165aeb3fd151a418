"""Accuracy of a model on labelled data, and agreement between two builds on the same inputs."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data import LabelledData
from .analysis.metrics import sqnr_db
from .errors import QuantuneError
from .runtime import run_over_batch

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]  # a batch of inputs -> a batch of logits


@dataclass(frozen=True)
class Predictor:
    name: str
    input_shape: tuple[int, ...]
    num_classes: int | None
    predict: Predict


def torch_predictor(model, name: str, input_shape: tuple[int, ...], num_classes: int | None) -> Predictor:
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.eval()(torch.from_numpy(batch)).numpy()

    return Predictor(name, input_shape, num_classes, predict)


def module_predictor(module, name: str) -> Predictor:
    """A compiled module takes its own fixed batch size: the data goes through in as many calls as it needs."""
    return Predictor(name, module.input_specs[0].shape, None, lambda batch: run_over_batch(module, batch)[0])


def logits_of(predictor: Predictor, data: LabelledData, batch_size: int = 100) -> np.ndarray:
    """The predictor's outputs on every input, in batches, with progress in the log."""
    data.check_fits(predictor.input_shape, predictor.num_classes)
    outputs, done, started, last_report = [], 0, time.perf_counter(), 0.0
    for inputs, _ in data.batches(batch_size):
        outputs.append(predictor.predict(inputs))
        done += len(inputs)
        elapsed = time.perf_counter() - started
        if elapsed - last_report >= 5 or done == len(data):
            log.info("%s on %s: %d/%d images (%.0f s)", predictor.name, data.name, done, len(data), elapsed)
            last_report = elapsed
    logits = np.concatenate(outputs)
    if logits.ndim != 2:
        raise QuantuneError(f"{predictor.name}: expected (batch, classes) logits, got shape {logits.shape}")
    if predictor.num_classes is None and data.labels is not None and data.labels.max() >= logits.shape[1]:
        raise QuantuneError(f"{data.name}: label {int(data.labels.max())} is out of range for {predictor.name}, "
                            f"which predicts {logits.shape[1]} classes")
    return logits


@dataclass(frozen=True)
class Evaluation:
    model: str
    data: str
    images: int
    top1: float | None  # percent, None without labels
    agreement_top1: float | None = None  # percent of images where both builds predict the same class
    output_sqnr_db: float | None = None
    against: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        parts = [f"{self.model} on {self.data} ({self.images} images)"]
        if self.top1 is not None:
            parts.append(f"top-1 {self.top1:.2f} %")
        if self.against is not None:
            parts.append(f"agreement with {self.against}: top-1 match {self.agreement_top1:.2f} %, output SQNR "
                         f"{self.output_sqnr_db:.1f} dB")
        return ", ".join(parts) + f" [{self.seconds:.1f} s]"


def evaluate(predictor: Predictor, data: LabelledData, *, compare: Predictor | None = None,
             batch_size: int = 100) -> Evaluation:
    started = time.perf_counter()
    logits = logits_of(predictor, data, batch_size)
    top1 = None if data.labels is None else 100.0 * float(np.mean(logits.argmax(1) == data.labels))
    if compare is None:
        return Evaluation(predictor.name, data.name, len(data), top1, seconds=time.perf_counter() - started)
    reference = logits_of(compare, data, batch_size)
    if reference.shape != logits.shape:
        raise QuantuneError(f"{predictor.name} gives {logits.shape} outputs, {compare.name} {reference.shape}: "
                            "they are not builds of the same model")
    return Evaluation(predictor.name, data.name, len(data), top1,
                      100.0 * float(np.mean(logits.argmax(1) == reference.argmax(1))), sqnr_db(reference, logits),
                      compare.name, time.perf_counter() - started)


@dataclass(frozen=True)
class PairedComparison:
    """Two builds' classes on the same labelled images: the images exactly one of them gets right, and the
    two-sided exact McNemar test on those (the chance of a split at least this uneven if both were equally
    accurate). Differences of a few images out of thousands are noise unless p is small."""

    only_first: int  # images the first build gets right and the second wrong
    only_second: int
    p_value: float


def paired_comparison(first_classes: np.ndarray, second_classes: np.ndarray, labels: np.ndarray
                      ) -> PairedComparison:
    """McNemar's exact test of two builds' predicted classes against the same labels."""
    if not first_classes.shape == second_classes.shape == labels.shape:
        raise QuantuneError(f"paired comparison of {first_classes.shape}, {second_classes.shape} predictions and "
                            f"{labels.shape} labels: evaluate both builds on the same images")
    first_right, second_right = first_classes == labels, second_classes == labels
    only_first, only_second = int(np.sum(first_right & ~second_right)), int(np.sum(second_right & ~first_right))
    discordant = only_first + only_second
    tail = sum(math.comb(discordant, i) for i in range(min(only_first, only_second) + 1))
    return PairedComparison(only_first, only_second, min(1.0, 2 * tail / 2 ** discordant))
