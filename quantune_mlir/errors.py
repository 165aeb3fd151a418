"""The one exception type users see: a one-line message that names the culprit and the way out."""
from __future__ import annotations


class QuantuneError(Exception):
    """A failure caused by input or environment; the CLI prints it as one line and exits non-zero."""
