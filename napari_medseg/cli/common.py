"""What the subcommands share: the progress printer and the common options."""
from __future__ import annotations

import argparse
import sys

from napari_medseg.progress import Progress

DEVICES = ("auto", "cpu", "cuda", "mps")


def progress_printer(label: str):
    """A report callback printing ``label: 40%`` lines to stderr every 10%."""
    state = {"last": -1}

    def report(progress: Progress) -> None:
        tenth = int(progress.fraction * 10)
        if tenth != state["last"]:
            state["last"] = tenth
            print(f"{label}: {tenth * 10:3d}%  {progress.message}", file=sys.stderr, flush=True)

    return report


def add_device(parser: argparse.ArgumentParser, what: str = "the model") -> None:
    """``--device``, the same for every command: ``auto`` (the default) is resolved by
    `napari_medseg.models.choose_device` (CUDA, then Apple MPS, then the CPU).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    what : str
        What runs on the device, for the help text.
    """
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help=f"torch device for {what}: auto (CUDA, then MPS, then the CPU; "
                             "default), cpu, cuda or mps")


def add_mirroring(parser: argparse.ArgumentParser) -> None:
    """``--no-mirroring``: nnU-Net models without nnU-Net's mirroring test-time augmentation."""
    parser.add_argument("--no-mirroring", action="store_true",
                        help="nnU-Net models: skip nnU-Net's mirroring test-time augmentation")


def add_overwrite(parser: argparse.ArgumentParser, what: str = "existing outputs") -> None:
    """``--overwrite``: replace ``what`` (without it, an existing output is refused).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    what : str
        What would be replaced, for the help text.
    """
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")
