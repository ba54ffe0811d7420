"""The ``view`` subcommand: the only command that starts Qt (napari and the dock).

The import-linter contract keeps every other CLI module Qt-free; this one
imports the GUI launcher, and only when the command runs.
"""
from __future__ import annotations

import argparse


def cmd_view(args: argparse.Namespace) -> int:
    from napari_medseg._allocator import keep_freed_memory

    keep_freed_memory()  # this process is ours: tune malloc before Qt starts any thread
    from napari_medseg._qt.launch import open_viewer  # Qt only for this subcommand

    return open_viewer(args.files, sample=args.sample, screenshot=args.screenshot)


def add_view_command(commands) -> None:
    """Add ``view`` to the subcommand parsers."""
    view = commands.add_parser("view", help="open napari with files (or the sample) and the dock")
    view.add_argument("files", nargs="*", help="images or label files to open")
    view.add_argument("--sample", action="store_true", help="open the sample case")
    view.add_argument("--screenshot", metavar="PNG",
                      help="save a screenshot of the window and exit")
    view.set_defaults(run=cmd_view)
