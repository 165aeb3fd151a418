"""Rewrite passes over IREE-dialect MLIR. Importing this package registers every pass."""
from .base import PASS_REGISTRY, Pass, PassFailure, parse_pipeline, run_passes  # noqa: F401
from . import apply_plan, batch_loop, depthwise_channels_last, expose_layer_outputs, lower_quant, tag_layers  # noqa: F401  (registers the passes)
