"""The project's error types: what a user can fix, as opposed to a bug.

The command line prints a :class:`TokzooError` (and file-system errors, :class:`OSError`) as one
line and exits with code 2; any other exception is a bug in tokzoo and keeps its traceback. Each
subclass also derives from the built-in type these errors were raised as before (``ValueError``,
``KeyError``, ``RuntimeError``), so ``except ValueError`` in a user's script keeps working.
"""
from __future__ import annotations


class TokzooError(Exception):
    """An error the user can fix (bad input, argument, file, recipe, card or cache); the message
    names the file or argument and the problem."""


class InputError(TokzooError, ValueError):
    """An input (image, audio, ids, argument) the library cannot use; names it and says why."""


class UnreadableFileError(TokzooError, ValueError):
    """A file exists but cannot be decoded as what it claims to be (image, audio, array, checkpoint)."""


class UnknownNameError(TokzooError, KeyError):
    """A zoo model, family or option name that does not exist; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class MissingWeightsError(TokzooError, FileNotFoundError):
    """A pretrained network a computation depends on (LPIPS trunk, Inception) is not on this machine;
    the message names the file, where it is looked for and how to provide it."""
