"""One exception hierarchy for everything scidl reports to a user.

Each message is one sentence that names the offending key, file or shape and what was expected.
The command line prints it on one line and exits with status 2.
"""

from __future__ import annotations


class ScidlError(Exception):
    """Base class of every error scidl raises on purpose."""


class ConfigError(ScidlError):
    """A config file is missing, malformed, or has an unknown key or a wrong type."""


class DataError(ScidlError):
    """A data file is missing or unreadable, or its contents are not finite."""


class ShapeError(ScidlError, ValueError):
    """A tensor at a public boundary has the wrong shape."""


class DivergenceError(ScidlError):
    """Training produced a non-finite or exploding loss."""


class CheckpointError(ScidlError):
    """A checkpoint is missing, incomplete, or does not match the run."""
