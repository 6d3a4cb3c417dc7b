"""The project's exception types.

Every error raised at a boundary (files, configs, shapes, keys) is one of these, with a message that
names the problem and the fix. The CLI prints the message and exits non-zero, with no JAX stack trace.
"""


class EganError(Exception):
    """Base class of every error this library raises on bad input."""


class KeyFileError(EganError):
    """A key file is missing, malformed, of an unknown version or has unsafe permissions."""


class KeyMismatchError(EganError):
    """A key's fingerprint differs from the one a model, file or report expects."""


class ShapeError(EganError, ValueError):
    """An array's shape, dtype or values do not fit the operation (e.g. H not divisible by M)."""


class ConfigError(EganError, ValueError):
    """A config is invalid: unknown field, wrong type, or a value out of range."""


class CheckpointError(EganError):
    """A checkpoint is missing, corrupt, or was written for a different config or key."""


class DataError(EganError):
    """A dataset is not available (e.g. not prepared on disk) or has an unexpected format."""
