"""``napari-medseg shapley``: contrast attributions of a model on one case."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_medseg.cli.common import (
    add_contrasts, add_device, add_folds, add_mirroring, add_overwrite, add_precision,
    read_case)

PROTOCOL = "protocol"


def load_rankings(source: str | None) -> tuple[dict, str]:
    """Clinician rankings: the protocol defaults, a JSON file, or none."""
    from napari_medseg.errors import InputError
    from napari_medseg.explain import PROTOCOL_RANKINGS

    if source in (None, "none"):
        return {}, "none"
    if source == PROTOCOL:
        return PROTOCOL_RANKINGS, PROTOCOL
    path = Path(source)
    try:
        return json.loads(path.read_bytes()), str(path)
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8 text
        raise InputError(f"{path}: cannot read the ranking file ({error}). Expected JSON like "
                         '{"ED": {"FLAIR": 1, "T2": 2, "T1": 3, "T1ce": 4}}') from error


def cmd_shapley(args: argparse.Namespace) -> int:
    from napari_medseg.cli.common import progress_printer, read_mask
    from napari_medseg.explain import explain_case
    from napari_medseg.io import atomic_path, json_text, write_image
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    volume = read_case(args, stored_types=True)
    reference = read_mask(args.reference, volume, args).data if args.reference else None
    rankings, ranking_source = load_rankings(args.ranking)
    model = load_model(args.model, folds=args.folds, trust_code=args.trust_code)
    result = run_to_end(explain_case(model, volume, reference, baseline=args.baseline,
                                     clinician=rankings, maps=bool(args.maps),
                                     device=args.device, precision=args.precision,
                                     mirroring=not args.no_mirroring,
                                     region="objects" if args.around_objects else "whole"),
                        progress_printer("shapley"))
    payload = {**result.to_dict(), "ranking_source": ranking_source,
               "case": list(volume.source_paths)}
    if args.maps:
        folder = Path(args.maps)
        folder.mkdir(parents=True, exist_ok=True)
        payload["maps"] = {}
        for name, target in result.targets.items():
            path = write_image(folder / f"shapley_{name}.nii.gz", target.maps, volume,
                               overwrite=args.overwrite)
            payload["maps"][name] = {"file": str(path), "volumes": list(result.contrasts)}
    with atomic_path(args.json, overwrite=args.overwrite) as temporary:
        temporary.write_text(json_text(payload), encoding="utf-8")
    for name, target in result.targets.items():
        order = sorted(result.contrasts, key=lambda c: target.ranks[result.contrasts.index(c)])
        extra = (f"  rank variance {target.rank_variance:.2f}"
                 if len(target.fold_ranks) > 1 else "  (one fold)")
        extra += f"  NSF {target.nsf:.2f}" if target.nsf is not None else ""
        print(f"{name:4s} " + "  ".join(f"{c} {target.phi[result.contrasts.index(c)]:+.3f}"
                                        for c in order) + extra)
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_explain_commands(commands) -> None:
    """Register ``shapley``."""
    parser = commands.add_parser("shapley", help="Shapley attribution of each contrast per label")
    parser.add_argument("images", nargs="+", help="one file per contrast (or one 4D file)")
    add_contrasts(parser)
    parser.add_argument("--reference", help="reference labels (values: Dice against them; "
                        "default: against the prediction from all contrasts)")
    parser.add_argument("--model", default=None, help="built-in name or model folder")
    add_folds(parser)
    parser.add_argument("--trust-code", action="store_true",
                        help="allow TorchScript weights (their code runs when loaded)")
    parser.add_argument("--baseline", default="zero", choices=("zero", "mean", "blur"))
    parser.add_argument("--ranking", default=PROTOCOL, help="clinician rankings: 'protocol' "
                        "(default), 'none', or a JSON file {target: {contrast: rank}}")
    parser.add_argument("--json", required=True, type=Path, help="output JSON")
    parser.add_argument("--maps", type=Path, help="folder for voxel maps (4D NIfTI per target)")
    add_device(parser)
    add_precision(parser)
    add_mirroring(parser)
    parser.add_argument("--around-objects", action="store_true",
                        help="experimental: run the coalitions only in a box around the "
                             "structures the model or the reference marks")
    add_overwrite(parser)
    parser.set_defaults(run=cmd_shapley)
