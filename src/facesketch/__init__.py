"""facesketch: face photo <-> pencil sketch synthesis, reproducible and measured."""

__version__ = "0.1.0"


class FacesketchError(Exception):
    """An error with a one-line message meant for the user (bad input, missing file, ...)."""
