"""The ``napari-medseg`` command line: the same core as the dock, for batch use.

Each subcommand is a function taking the parsed arguments; errors a user can
fix (`MedsegError`) print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from napari_medseg import __version__
from napari_medseg.cli.cohort import add_cohort_commands
from napari_medseg.cli.common import warn_of_emulated_bf16
from napari_medseg.cli.explain import add_explain_commands
from napari_medseg.cli.export import add_export_commands
from napari_medseg.cli.files import add_file_commands
from napari_medseg.cli.interactive import add_interactive_commands
from napari_medseg.cli.models import add_model_commands
from napari_medseg.cli.topology import add_topology_commands
from napari_medseg.cli.uncertainty import add_uncertainty_commands
from napari_medseg.cli.view import add_view_command
from napari_medseg.errors import MedsegError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="napari-medseg",
        description="Human-in-the-loop 3D medical image segmentation (napari plugin core).")
    parser.add_argument("--version", action="version", version=f"napari-medseg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_file_commands(commands)
    add_view_command(commands)
    add_model_commands(commands)
    add_explain_commands(commands)
    add_topology_commands(commands)
    add_uncertainty_commands(commands)
    add_interactive_commands(commands)
    add_export_commands(commands)
    add_cohort_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    try:
        warn_of_emulated_bf16(args)
        return int(args.run(args) or 0)
    except MedsegError as error:
        print(f"napari-medseg: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-medseg: interrupted", file=sys.stderr)
        return 130
