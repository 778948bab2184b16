"""Errors a source raises when what it read is not usable."""


class SourceFormatError(ValueError):
    """The payload is not what this source kind serves (wrong shape, not JSON, truncated)."""
