"""Calibration and (with issue 5) the two-inference sensitivity analysis."""
