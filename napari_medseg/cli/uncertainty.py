"""``napari-medseg uncertainty``: maps and per-structure figures of a model's uncertainty."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from napari_medseg.cli.common import (
    add_contrasts, add_device, add_folds, add_overlap, add_overwrite, add_precision,
    positive_int, read_case)


def _suggestions(volume, mean, model) -> dict:
    """Suggested clicks on the mean's labels, from the same error map the dock uses."""
    from napari_medseg.interactive import suggestion_map
    from napari_medseg.labels import most_probable
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import suggest_clicks

    labels = most_probable(mean)
    error_map, source = run_to_end(suggestion_map(volume, labels, mean, model))
    return {"suggestions": suggest_clicks(error_map, labels, spacing=volume.spacing),
            "suggestions_from": source}


def cmd_uncertainty(args: argparse.Namespace) -> int:
    from napari_medseg.cli.common import progress_printer, read_mask
    from napari_medseg.io import atomic_path, check_writable, json_text, write_image
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    prefix = str(args.output)
    outputs = {name: Path(f"{prefix}_{name}.nii.gz")
               for name in ("total", "aleatoric", "epistemic", "spread")}
    for path in (*outputs.values(), args.json):
        check_writable(Path(path), args.overwrite)
    volume = read_case(args)
    reference = read_mask(args.reference, volume, args).data if args.reference else None
    model = load_model(args.model, folds=args.folds, trust_code=args.trust_code)
    result = run_to_end(_estimate(model, volume, args, reference),
                        progress_printer("uncertainty"))
    for name in ("total", "aleatoric", "epistemic"):
        write_image(outputs[name], result.maps[name], volume, overwrite=args.overwrite)
    write_image(outputs["spread"], result.spread, volume, overwrite=args.overwrite)
    payload = {**result.to_dict(), "model": {"name": model.spec.name,
                                             "version": model.spec.version,
                                             "folds": model.n_folds},
               "maps": {k: str(v) for k, v in outputs.items()},
               "map_normalisation": "divided by log K (K classes), so each lies in [0, 1]",
               **_suggestions(volume, result.mean, model)}
    with atomic_path(args.json, overwrite=args.overwrite) as temporary:
        temporary.write_text(json_text(payload), encoding="utf-8")
    for name, figures in result.structures.items():
        print(f"{name:4s} volume {figures['volume_mean_mm3']:9.1f} mm3 "
              f"(cv {figures['volume_cv']:.3f})  uncertainty inside "
              f"{figures['uncertainty_inside']:.3f} "
              f"boundary {figures['uncertainty_boundary']:.3f}")
    if result.calibration:
        aurocs = result.calibration["error_detection_auroc"]
        print(f"ECE {result.calibration['ece']:.4f}; error-detection AUROC "
              + (", ".join(f"{k} {v:.3f}" for k, v in aurocs.items())
                 if all(map(math.isfinite, aurocs.values()))
                 else "n/a (the labels are all right or all wrong against the reference)"))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _estimate(model, volume, args, reference):
    from napari_medseg.uncertainty import estimate_uncertainty

    return estimate_uncertainty(model, volume, args.method, args.samples, reference,
                                device=args.device, overlap=args.overlap,
                                precision=args.precision)


def add_uncertainty_commands(commands) -> None:
    """Register ``uncertainty``."""
    parser = commands.add_parser("uncertainty", help="uncertainty maps (MC dropout, TTA, folds)")
    parser.add_argument("images", nargs="+", help="one file per contrast (or one 4D file)")
    add_contrasts(parser)
    parser.add_argument("--method", default="auto", help="mc, tta, ensemble, a combination "
                        "like mc,ensemble, or auto (default: mc when the network has dropout, "
                        "else the folds, else flip TTA)")
    parser.add_argument("--samples", type=positive_int, default=8, help="samples T per fold (8)")
    add_overlap(parser, None, "window overlap (default: 0.25 for mc and tta, whose samples' "
                "average smooths the windows' seams; 0.5 for the folds alone)")
    parser.add_argument("-o", "--output", required=True, help="prefix of the map files "
                        "(PREFIX_total.nii.gz, _aleatoric, _epistemic, _spread)")
    parser.add_argument("--json", required=True, type=Path, help="figures JSON")
    parser.add_argument("--reference", help="reference labels: ECE, reliability, AUROC")
    parser.add_argument("--model", default=None, help="built-in name or model folder")
    add_folds(parser)  # mc and tta sample the first of them
    parser.add_argument("--trust-code", action="store_true",
                        help="allow TorchScript weights (their code runs when loaded)")
    add_precision(parser)
    add_device(parser)
    add_overwrite(parser)
    parser.set_defaults(run=cmd_uncertainty)
