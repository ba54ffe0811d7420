"""Errors that napari-medseg raises for bad input.

Every message names the offending file or value, the problem and the fix, so
the command line can print it as one line and the GUI as one notification.
"""
from __future__ import annotations


class MedsegError(Exception):
    """Base class of all user-facing napari-medseg errors."""


class InputError(MedsegError, ValueError):
    """A file, folder or array cannot be used as given."""


def describe(path: object, problem: str, fix: str | None = None) -> str:
    """Format ``'<path>: <problem>. <fix>'`` as one line.

    Parameters
    ----------
    path : object
        The file or folder concerned (anything with a ``str``).
    problem : str
        What is wrong, without a trailing full stop.
    fix : str, optional
        What the user can do about it.

    Returns
    -------
    str
        The one-line message.
    """
    message = f"{path}: {problem}"
    if fix:
        message += f". {fix}"
    return " ".join(message.split())  # one line, whatever the wrapped library said
