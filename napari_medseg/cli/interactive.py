"""``napari-medseg refine`` (replay clicks) and ``bench-clicks`` (the robot user)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_medseg.cli.common import (
    add_contrasts, add_device, add_overwrite, add_precision, positive_int, read_case, read_mask)
from napari_medseg.errors import InputError
from napari_medseg.interactive._session import ENGINES


def cmd_refine(args: argparse.Namespace) -> int:
    from napari_medseg.interactive import InteractiveSession, make_engine, read_clicks
    from napari_medseg.io import check_output_format, check_writable, write_labels

    check_writable(args.output, args.overwrite)
    check_output_format(args.output)
    clicks = read_clicks(args.clicks)
    volume = read_case(args)
    mask = read_mask(args.mask, volume, args).data if args.mask else None
    engine = make_engine(args.engine, volume, device=args.device,
                         segmentation_model=args.model, precision=args.precision)
    session = InteractiveSession(volume, mask, label=args.label, engine=engine)
    for number, click in enumerate(clicks, start=1):
        try:
            session.click(click.position, click.positive)
        except InputError as error:
            raise InputError(f"{args.clicks}: click {number}: {error}") from error
        change = session.changes[-1]
        print(f"click {number} {'+' if click.positive else '-'} {click.position}: "
              f"{change.n_voxels} voxels changed in {1000 * change.seconds:.0f} ms")
    write_labels(args.output, session.mask, volume, overwrite=args.overwrite)
    print(f"{args.output}: {len(clicks)} clicks with {session.engine_name}")
    return 0


def _discover_cases(folder: Path) -> list[str]:
    ids = sorted(path.name[: -len("_seg.nii.gz")] for path in folder.glob("*_seg.nii.gz"))
    if not ids:
        raise InputError(f"{folder}: no cases found (expected {{id}}_seg.nii.gz with "
                         "{id}_t1/_t1ce/_t2/_flair.nii.gz, as `napari-medseg sample` writes)")
    return ids


def cmd_bench_clicks(args: argparse.Namespace) -> int:
    import numpy as np

    from napari_medseg.interactive import make_engine
    from napari_medseg.interactive._evaluate import evaluate_targets, summarise
    from napari_medseg.io import (
        atomic_path, check_writable, json_text, labels_on_grid, read_labels, read_volume)
    from napari_medseg.sample import case_files

    check_writable(args.json, args.overwrite)
    folder = Path(args.cases_dir)
    trials = []
    for case_id in _discover_cases(folder):
        images, reference = case_files(folder, case_id)
        volume = read_volume(images)
        labels = labels_on_grid(read_labels(reference), volume, flag="").data
        values = [int(v) for v in np.unique(labels) if v]
        engine = make_engine(args.engine, volume, device=args.device, precision=args.precision)
        limits = {"cap": max(20, args.clicks), "min_clicks": args.clicks}
        # each label edited as itself with every label's Dice tracked (harm), then the
        # whole object as one label
        per_label = evaluate_targets(
            volume, {f"label {v}": labels == v for v in values}, engine,
            labels={f"label {v}": v for v in values}, reference=labels, values=values, **limits)
        whole = evaluate_targets(volume, {"whole": labels > 0}, engine,
                                 reference=(labels > 0).astype(np.uint8), values=[1], **limits)
        for trial in per_label + whole:
            trials.append({"case": case_id, "engine": engine.name, **trial})
            print(f"{case_id} {trial['target']:8s} Dice after 1/3/5 clicks "
                  f"{trial['dice'][1]:.3f}/{trial['dice'][3]:.3f}/{trial['dice'][5]:.3f} "
                  f"NoC@90 {trial['noc90']} harmful clicks {trial['harmful_clicks']}")
    summary = summarise(trials)
    with atomic_path(args.json, overwrite=args.overwrite) as temporary:
        temporary.write_text(json_text({"summary": summary, "trials": trials}, indent=1),
                             encoding="utf-8")
    print(json_text(summary, indent=None), end="")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_interactive_commands(commands) -> None:
    """Register ``refine`` and ``bench-clicks``."""
    refine = commands.add_parser("refine", help="replay a click list on an image (reproducible "
                                                "edits)")
    refine.add_argument("images", nargs="+", help="image file(s), one per contrast or one 4D")
    add_contrasts(refine)
    refine.add_argument("--mask", help="initial label mask (default: empty)")
    refine.add_argument("--clicks", required=True, type=Path,
                        help='JSON: [{"position": [z, y, x], "positive": true}, ...]')
    refine.add_argument("--label", type=int, default=1, help="label value the clicks edit (1)")
    refine.add_argument("--engine", default="model", choices=ENGINES,
                        help="model: the segmentation model's probabilities as the prior "
                             "(default); random_walker: no model; learned: click network")
    refine.add_argument("--model", default=None,
                        help="segmentation model of the model engine (default: built-in)")
    add_device(refine, "the click engine")
    add_precision(refine)
    refine.add_argument("-o", "--output", required=True, type=Path, help="output mask")
    add_overwrite(refine, "an existing output")
    refine.set_defaults(run=cmd_refine)
    bench = commands.add_parser("bench-clicks", help="robot-user benchmark over a case folder")
    bench.add_argument("cases_dir", help="folder of cases as `napari-medseg sample` writes")
    bench.add_argument("--clicks", type=positive_int, default=10, help="clicks per target (10)")
    bench.add_argument("--engine", default="random_walker", choices=ENGINES)
    add_device(bench, "the click engine")
    add_precision(bench)
    bench.add_argument("--json", required=True, type=Path, help="output JSON")
    add_overwrite(bench, "an existing output")
    bench.set_defaults(run=cmd_bench_clicks)
