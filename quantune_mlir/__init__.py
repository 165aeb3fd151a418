"""quantune_mlir: compiler-based, local-metric-driven mixed-precision quantization (QuantuneV2) on MLIR/IREE."""
from .api import build, compile_model, import_model, load_layer_table, load_module  # noqa: F401
from .errors import QuantuneError  # noqa: F401

__version__ = "0.1.0"
