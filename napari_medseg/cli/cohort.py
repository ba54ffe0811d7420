"""``napari-medseg batch``: cohort triage on Dask (local cluster or an existing scheduler)."""
from __future__ import annotations

import argparse
import sys

from napari_medseg.cli.common import add_device, add_precision, positive_int


def cmd_batch(args: argparse.Namespace) -> int:
    from napari_medseg.cli.common import progress_printer
    from napari_medseg.cohort import run_batch
    from napari_medseg.progress import run_to_end

    report = run_to_end(run_batch(args.input_dir, args.output_dir, model=args.model,
                                  scheduler=args.scheduler, workers=args.workers,
                                  method=args.method, samples=args.samples, device=args.device,
                                  precision=args.precision, resample=args.resample),
                        progress_printer("batch"))
    for name, reason in report.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    for failure in report.failed:
        print(f"failed {failure['case_id']}: {failure['error']}", file=sys.stderr)
    for row in report.rows[:10]:
        if row["status"] == "done":
            print(f"{row['rank']:3d} {row['case_id']:24s} priority {row['priority']:.3f}  "
                  f"{row['reasons'] or '-'}")
    print(f"{len(report.computed)} computed, {len(report.resumed)} already done, "
          f"{len(report.failed)} failed, {len(report.skipped)} skipped in "
          f"{report.seconds:.0f} s -> {report.csv_path}")
    return 1 if report.failed else 0


def add_cohort_commands(commands) -> None:
    """Register ``batch``."""
    batch = commands.add_parser("batch", help="segment, estimate uncertainty and check "
                                              "topology over a cohort; rank cases for review")
    batch.add_argument("input_dir",
                       help="cases: one folder each, nnU-Net style files or a BIDS dataset")
    batch.add_argument("output_dir", help="results: one folder per case, triage.csv/json")
    batch.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:PORT); "
                                           "'serial' for no Dask; default a local cluster")
    batch.add_argument("--workers", type=positive_int, default=2, help="local cluster workers (2)")
    batch.add_argument("--model", default="brats_unet", help="model name or folder")
    batch.add_argument("--method", default="auto",
                       help="uncertainty: mc, tta, ensemble; auto (default): mc when the "
                            "network has dropout, else the folds, else flip TTA")
    batch.add_argument("--samples", type=positive_int, default=4, help="samples per fold (4)")
    add_device(batch, "the model in each worker")
    add_precision(batch)
    batch.add_argument("--resample", action="store_true",
                       help="a case's contrasts on different grids: resample them onto its "
                            "finest one (default: the case fails, with the reason)")
    batch.set_defaults(run=cmd_batch)
