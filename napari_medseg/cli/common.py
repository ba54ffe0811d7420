"""What the subcommands share: the progress printer and the common options."""
from __future__ import annotations

import argparse
import math
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


def add_precision(parser: argparse.ArgumentParser) -> None:
    """``--precision``, the same for every command that runs a network (see
    `napari_medseg.models.device.autocast_dtype`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    from napari_medseg.models.device import PRECISIONS

    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="network arithmetic: auto = bfloat16 on CPUs with native bf16 "
                             "(AVX-512 BF16, AMX) and CUDA, float16 on MPS, else float32")


def warn_of_emulated_bf16(args: argparse.Namespace) -> None:
    """Print a warning line when the command asked for ``--precision bfloat16`` on a CPU
    that only emulates it (see `napari_medseg.models.device.emulated_bf16_warning`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments of any subcommand (those without ``--precision`` pass).

    Raises
    ------
    InputError
        When ``--device`` names a device this machine lacks.
    """
    if getattr(args, "precision", None) != "bfloat16":
        return
    from napari_medseg.models.device import choose_device, emulated_bf16_warning

    device = choose_device(getattr(args, "device", "auto"))
    warning = emulated_bf16_warning(args.precision, device.type)
    if warning:
        print(f"napari-medseg: warning: {warning}", file=sys.stderr)


def add_contrasts(parser: argparse.ArgumentParser) -> None:
    """``--contrasts``: name the channels of the images (a 4D file's are otherwise
    numbered), and ``--resample``: put files on other grids onto the finest one; both
    for `read_case`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser (which has an ``images`` argument).
    """
    parser.add_argument("--contrasts", nargs="+", metavar="NAME",
                        help="contrast of each channel, in order (for example FLAIR T1 T1ce T2 "
                             "for a 4D file stored so); default: from the file names")
    parser.add_argument("--resample", action="store_true",
                        help="contrasts on different grids (shape, spacing, orientation): "
                             "resample them onto the finest one, and a mask or reference "
                             "onto the case's grid (default: refuse them)")


def read_case(args: argparse.Namespace, stored_types: bool = False):
    """The command's images as one `Volume`, channels named by ``--contrasts`` if given;
    with ``stored_types``, 8- and 16-bit files keep their integers (for commands that
    read the voxels only through `inference.prepare_input`: half the memory)."""
    from napari_medseg.io import read_volume

    return read_volume(args.images, args.contrasts, keep_integers=stored_types,
                       resample=args.resample)


def read_mask(path, volume, args: argparse.Namespace):
    """A mask or reference file as a `LabelMap` on ``volume``'s grid (`io.labels_on_grid`):
    one on another grid is refused, or with ``--resample`` put onto it."""
    from napari_medseg.io import labels_on_grid, read_labels

    return labels_on_grid(read_labels(path), volume, resample=args.resample)


def add_mirroring(parser: argparse.ArgumentParser) -> None:
    """``--no-mirroring``: nnU-Net models without nnU-Net's mirroring test-time augmentation."""
    parser.add_argument("--no-mirroring", action="store_true",
                        help="nnU-Net models: skip nnU-Net's mirroring test-time augmentation")


def add_folds(parser: argparse.ArgumentParser) -> None:
    """``--folds``: run only these folds of the model (positions in its fold list)."""
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="use only these folds (positions in the model's fold list; "
                             "default all)")


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


def add_overlap(parser: argparse.ArgumentParser, default: float | None, help_text: str) -> None:
    """``--overlap``: the sliding window's overlap, a fraction in [0, 1) (anything else is
    refused by argparse with one line and exit status 2, before any file is read).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    default : float or None
        The default (None: the command's own choice).
    help_text : str
        The help line.
    """
    parser.add_argument("--overlap", type=_overlap_fraction, default=default, help=help_text)


def bounded(convert, least: float, above: bool, what: str, hint: str,
            below: float = math.inf):
    """An argparse type: ``convert`` (int or float) of a value, refused unless finite, at
    least ``least`` (above it when ``above``) and under ``below``, in one line naming the
    value and the fix (argparse exits with status 2 before any file is read).

    Parameters
    ----------
    convert : type
        ``int`` or ``float``.
    least : float
        The smallest value allowed (or the bound, with ``above``).
    above : bool
        The value must be greater than ``least``.
    what : str
        What the value must be, for the message ("a count").
    hint : str
        What to give instead ("a whole number of 1 or more, for example 4").
    below : float
        The value must be less than this (default: no upper bound).

    Examples
    --------
    >>> bounded(float, 0, True, "a number above 0", "one such as 1.5")("2")
    2.0
    """
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or value < least or (above and value == least)
                or value >= below):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}: give {hint}")
        return value

    parse.__name__ = what  # argparse names the type by it
    return parse


#: a whole number of 1 or more (windows per pass, samples, cases, epochs...)
positive_int = bounded(int, 1, False, "a count", "a whole number of 1 or more, for example 4")
#: a whole number of 0 or more (a seed, a thread count where 0 means the default)
non_negative_int = bounded(int, 0, False, "a whole number of 0 or more", "0, 1, 2, ...")
#: a finite number above 0 (a voxel size, a learning rate)
positive_number = bounded(float, 0, True, "a number above 0", "a finite number such as 1.5")
#: a finite number of 0 or more (a distance in mm)
non_negative_number = bounded(float, 0, False, "a number of 0 or more",
                              "a finite number such as 8")
_overlap_fraction = bounded(float, 0, False, "a window overlap",
                            "a fraction from 0 up to (not including) 1, for example 0.5", below=1)
