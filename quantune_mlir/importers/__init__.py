"""Frontends: a PyTorch module or an ONNX file in, tagged linalg-on-tensors MLIR and a layer table out."""
from .common import ImportedModel  # noqa: F401
from .onnx_frontend import import_onnx  # noqa: F401
from .torch_frontend import import_torch  # noqa: F401
