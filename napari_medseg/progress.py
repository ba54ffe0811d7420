"""Progress reports yielded by long computations (GUI workers and CLI drain them)."""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` steps, with a short message for the user."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction in ``[0, 1]``."""
        return min(1.0, self.done / self.total) if self.total else 1.0


ProgressGenerator = Generator[Progress, None, T]


def run_to_end(generator: Generator[Progress, Any, T], report=None) -> T:
    """Drain a progress generator and return its result (CLI and tests).

    Parameters
    ----------
    generator : generator
        Yields `Progress`, returns the result.
    report : callable, optional
        Called with each `Progress`.
    """
    while True:
        try:
            progress = next(generator)
        except StopIteration as stop:
            return stop.value
        if report is not None:
            report(progress)


def rescaled(generator: Generator[Progress, Any, T], part: int, parts: int,
             message: str = "") -> Generator[Progress, None, T]:
    """Re-yield a sub-task's progress as part ``part`` of ``parts`` equal parts.

    Parameters
    ----------
    generator : generator
        The sub-task: yields `Progress`, returns its result.
    part, parts : int
        Which part this sub-task is (from 0) and how many there are.
    message : str
        Put before the sub-task's own message.

    Returns
    -------
    The sub-task's result (``result = yield from rescaled(...)``).
    """
    while True:
        try:
            step = next(generator)
        except StopIteration as stop:
            return stop.value
        total = max(step.total, 1)
        text = f"{message}: {step.message}" if message and step.message else \
            message or step.message
        yield Progress(part * total + step.done, parts * total, text)
