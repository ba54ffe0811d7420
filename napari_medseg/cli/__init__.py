"""The ``napari-medseg`` command line: the same core as the dock, for batch use.

One module per command group (``files``, ``models``, ``explain``, ``topology``,
``uncertainty``, ``interactive``, ``export``, ``cohort``, ``view``); what they
share (the progress printer, ``--device``, ``--overwrite``) is in ``common``.
"""
from napari_medseg.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
