"""Precision plans and (with issue 5) the policies that make them. Pure Python: no MLIR here."""
from .plan import PRECISIONS, LayerPlan, PrecisionPlan  # noqa: F401
