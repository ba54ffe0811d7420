"""File subcommands of the command line: ``sample`` and ``info``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_medseg.cli.common import (
    add_overwrite, non_negative_int, positive_int, positive_number)
from napari_medseg.errors import MedsegError
from napari_medseg.io._header import describe_file


def _write_vessels(args: argparse.Namespace) -> int:
    from napari_medseg.io import write_image, write_labels
    from napari_medseg.sample import vessel_tree

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seed, args.seed + args.cases):
        volume, mask = vessel_tree(seed, spacing=args.spacing)
        stem = f"vessels_{seed:06d}"
        write_image(out / f"{stem}_mra.nii.gz", volume.data[0], volume, args.overwrite)
        write_labels(out / f"{stem}_seg.nii.gz", mask.data, volume, {1: "vessel"}, args.overwrite)
        print(f"{stem}  seed={seed}  shape={volume.shape}  vessel voxels={int(mask.data.sum())}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from napari_medseg.sample import generate_case, write_case

    if args.vessels:
        return _write_vessels(args)
    out = Path(args.outdir)
    for index in range(args.cases):
        seed = args.seed + index
        case = generate_case(seed, spacing=args.spacing)
        case_id = f"medseg_{seed:06d}"
        written = write_case(case, out, case_id, overwrite=args.overwrite)
        voxels = case.info["label_voxels"]
        print(f"{case_id}  seed={seed}  shape={case.volume.shape}  spacing={args.spacing} mm  "
              f"NCR={voxels['NCR']} ED={voxels['ED']} ET={voxels['ET']} voxels  "
              f"-> {written['seg'].parent}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    failures = 0
    records = []
    for path in args.files:
        try:
            records.append(describe_file(path, read_data=args.check))
        except MedsegError as error:
            print(f"napari-medseg: error: {error}", file=sys.stderr)
            failures += 1
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for record in records:
            print(f"{record['path']}\n  format       {record['format']}\n"
                  f"  shape (zyx)  {tuple(record['shape_zyx'])}\n"
                  f"  spacing (mm) {tuple(record['spacing_zyx_mm'])}\n"
                  f"  orientation  {record['orientation']}\n"
                  f"  channels     {', '.join(record['channels'])}")
    return 2 if failures else 0


def add_file_commands(commands) -> None:
    """Add ``sample`` and ``info`` to the subcommand parsers."""
    sample = commands.add_parser("sample", help="write synthetic BraTS-like cases as NIfTI")
    sample.add_argument("outdir", help="output folder (created if missing)")
    sample.add_argument("--cases", type=positive_int, default=1,
                        help="number of cases (default 1)")
    sample.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the first case (default 0)")
    sample.add_argument("--spacing", type=positive_number, default=1.5,
                        help="voxel size in mm (1.5)")
    add_overwrite(sample, "existing files")
    sample.add_argument("--vessels", action="store_true",
                        help="write vessel-tree phantoms (image + mask) instead of brain cases")
    sample.set_defaults(run=cmd_sample)

    info = commands.add_parser("info", help="shape, spacing, orientation and channels of files")
    info.add_argument("files", nargs="+", help="NIfTI, NRRD, MHA/MHD, zarr or DICOM folders")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--check", action="store_true",
                      help="also read every voxel (finds truncated data and NaN values); by "
                      "default only the header is read")
    info.set_defaults(run=cmd_info)
