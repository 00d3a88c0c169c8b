"""Errors the engine reports to the user as one message (no traceback)."""
from vistok.errors import TokzooError


class TrainingStopped(TokzooError, RuntimeError):
    """Training stopped on purpose (too many non-finite steps); the last good checkpoint is kept."""
