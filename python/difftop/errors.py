# SPDX-License-Identifier: MIT
"""Exceptions: one DifftopError subclass per dtStatus code of include/difftop/base.h.

Each carries the status code (`.status`) and the message of dt_last_error() for the thread that
made the failing call. Where a builtin exception means the same thing, the subclass derives from
it too (an ArgumentError is a ValueError, a NotFoundError a LookupError, ...), so generic
handlers keep working.
"""


class DifftopError(Exception):
    """A difftop C call returned a non-zero status."""

    status = None

    def __init__(self, message="", status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ArgumentError(DifftopError, ValueError):
    """DT_ERR_ARG: a NULL pointer or an out-of-range argument."""
    status = 1


class ShapeError(DifftopError, ValueError):
    """DT_ERR_SHAPE: shapes do not fit together."""
    status = 2


class OutOfMemoryError(DifftopError, MemoryError):
    """DT_ERR_NOMEM: an allocation or a fixed-size workspace ran out."""
    status = 3


class DifftopIOError(DifftopError, OSError):
    """DT_ERR_IO: a file could not be opened, read or written."""
    status = 4


class FormatError(DifftopError, ValueError):
    """DT_ERR_FORMAT: a file or string is malformed."""
    status = 5


class NonFiniteError(DifftopError, ArithmeticError):
    """DT_ERR_NONFINITE: a NaN or Inf where a finite number is required."""
    status = 6


class NotFoundError(DifftopError, LookupError):
    """DT_ERR_NOT_FOUND: an unknown name (task, key, tensor, option)."""
    status = 7


class StateError(DifftopError, RuntimeError):
    """DT_ERR_STATE: the object is not in a state that allows this call."""
    status = 8


class UnsupportedError(DifftopError, NotImplementedError):
    """DT_ERR_UNSUPPORTED: a valid request this build cannot serve."""
    status = 9


class InternalError(DifftopError, RuntimeError):
    """DT_ERR_INTERNAL: a bug in difftop."""
    status = 10


BY_STATUS = {cls.status: cls for cls in (
    ArgumentError, ShapeError, OutOfMemoryError, DifftopIOError, FormatError, NonFiniteError,
    NotFoundError, StateError, UnsupportedError, InternalError)}


def from_status(status, message):
    cls = BY_STATUS.get(int(status), DifftopError)
    return cls(message, int(status))
