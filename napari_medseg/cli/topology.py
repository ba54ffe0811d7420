"""``napari-medseg topology``: Betti numbers and located errors of a label mask."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_medseg.cli.common import add_overwrite, non_negative_number


def cmd_topology(args: argparse.Namespace) -> int:
    from napari_medseg.io import (
        atomic_path, check_output_format, check_writable, json_text, labels_on_grid,
        read_labels, write_labels)
    from napari_medseg.labels import present_labels
    from napari_medseg.topology import check_setup, check_topology, overlay, report_dict

    check_writable(args.json, args.overwrite)
    if args.overlay:
        check_writable(args.overlay, args.overwrite)
        check_output_format(args.overlay)
    mask = read_labels(args.mask)
    reference = labels_on_grid(read_labels(args.reference), mask, resample=args.resample
                               ).data if args.reference else None
    setup = check_setup(mask.label_names, expect=args.expect, brats=args.brats,
                        present=present_labels(mask.data))
    results = check_topology(mask.data, mask.affine, setup.names, setup.regions,
                             setup.expectations, reference, connectivity=args.connectivity,
                             max_gap_mm=args.max_gap)
    payload = {"mask": str(args.mask), "reference": args.reference,
               **report_dict(results, mask.affine, args.connectivity)}
    if args.overlay:
        write_labels(args.overlay, overlay(mask.shape, results), mask, overwrite=args.overwrite)
        payload["overlay"] = str(args.overlay)
    with atomic_path(args.json, overwrite=args.overwrite) as temporary:
        temporary.write_text(json_text(payload), encoding="utf-8")
    for name, entry in payload["targets"].items():
        kinds = [error["kind"] for error in entry["errors"]]
        flag = "ok" if entry["matches_expected"] and not kinds else "CHECK"
        expected = ",".join(f"{k}={v}" for k, v in entry["expected"].items()) or "default rule"
        print(f"{name:8s} b0={entry['betti']['b0']} b1={entry['betti']['b1']} "
              f"b2={entry['betti']['b2']}  expected {expected}  "
              f"errors: {', '.join(kinds) or 'none'}  [{flag}]")
    if any(not entry["expected"] for entry in payload["targets"].values()):
        from napari_medseg.topology._errors import DEFAULT_RULE

        print(f"default rule ({DEFAULT_RULE}); --expect LABEL:b0=1,b1=0,b2=0 states one",
              file=sys.stderr)
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_topology_commands(commands) -> None:
    """Register ``topology``."""
    parser = commands.add_parser("topology", help="Betti numbers and topology errors of a mask")
    parser.add_argument("mask", help="label mask (NIfTI, NRRD, MHA, zarr)")
    parser.add_argument("--reference", help="reference mask: merges, splits, Betti error, clDice")
    parser.add_argument("--resample", action="store_true",
                        help="a reference on another grid than the mask's: put it onto the "
                             "mask's grid, nearest neighbour (default: refuse it)")
    parser.add_argument("--expect", action="append", default=[], metavar="LABEL:b0=1,b1=0,b2=0",
                        help="expected topology of a label (name or value) or region; add "
                             "',tubular' for vessels (repeatable)")
    parser.add_argument("--brats", action="store_true",
                        help="BraTS labels: names NCR/ED/ET, regions WT/TC and the built-in "
                             "model's expected topology")
    parser.add_argument("--connectivity", type=int, default=26, choices=(26, 6),
                        help="foreground connectivity (background takes the other); 26")
    parser.add_argument("--max-gap", type=non_negative_number, default=8.0,
                        help="largest tube gap, mm (8)")
    parser.add_argument("--json", required=True, type=Path, help="output JSON")
    parser.add_argument("--overlay", type=Path, help="write the error overlay (label mask)")
    add_overwrite(parser)
    parser.set_defaults(run=cmd_topology)
