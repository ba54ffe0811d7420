"""``napari-medseg export`` (NIfTI / zarr / nnU-Net v2) and ``finetune``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_medseg.cli.common import (
    add_contrasts, add_device, add_overwrite, non_negative_int, positive_int, positive_number,
    read_case, read_mask)


def cmd_export(args: argparse.Namespace) -> int:
    from napari_medseg.export import export_case
    from napari_medseg.interactive import read_clicks
    from napari_medseg.labels import label_names
    from napari_medseg.models import load_model

    volume = read_case(args)
    mask = read_mask(args.mask, volume, args)
    original = read_mask(args.original, volume, args).data if args.original else None
    history = [click.as_dict() for click in read_clicks(args.history)] if args.history else []
    names = mask.label_names or label_names()
    model = load_model(args.model) if args.model else None
    result = export_case(volume, mask.data, args.format, args.out, case_id=args.case_id,
                         original=original, model=model, history=history, label_names=names,
                         dataset_name=args.dataset_name, dataset_id=args.dataset_id,
                         overwrite=args.overwrite)
    for path in result.files:
        print(path)
    print(f"exported {args.format} -> {result.output}", file=sys.stderr)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import torch

    from napari_medseg.cli.common import progress_printer
    from napari_medseg.export import finetune
    from napari_medseg.progress import run_to_end

    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_to_end(finetune(args.model, args.dataset_dir, args.output, epochs=args.epochs,
                                 steps=args.steps, folds=args.folds, seed=args.seed,
                                 learning_rate=args.learning_rate, device=args.device,
                                 overwrite=args.overwrite),
                        progress_printer("finetune"))
    print(f"{result.folder}: validation Dice before {result.dice_before} after "
          f"{result.dice_after} on {', '.join(result.val_cases)}")
    return 0


def add_export_commands(commands) -> None:
    """Register ``export`` and ``finetune``."""
    export = commands.add_parser("export", help="export a corrected mask for retraining")
    export.add_argument("images", nargs="+", help="image file(s), one per contrast or one 4D")
    add_contrasts(export)
    export.add_argument("--mask", required=True, help="the corrected label mask")
    export.add_argument("--format", required=True, choices=("nifti", "zarr", "nnunet"))
    export.add_argument("--out", required=True, type=Path,
                        help="output folder (nnunet: the datasets root or a DatasetNNN_Name)")
    export.add_argument("--dataset-name", help="nnunet: dataset name (created when missing)")
    export.add_argument("--dataset-id", type=int, help="nnunet: id of a new dataset (501+)")
    export.add_argument("--case-id", help="case identifier (default: from the file names)")
    export.add_argument("--original", help="the model's mask before correction (provenance)")
    export.add_argument("--model", help="model that produced --original (name or folder)")
    export.add_argument("--history", help="click history JSON (as `refine` replays)")
    add_overwrite(export, "an existing export")
    export.set_defaults(run=cmd_export)
    tune = commands.add_parser("finetune", help="fine-tune a model on an exported dataset")
    tune.add_argument("dataset_dir", help="nnU-Net v2 raw dataset folder")
    tune.add_argument("--model", default="brats_unet", help="model name or folder")
    tune.add_argument("-o", "--output", required=True, type=Path, help="new model folder")
    tune.add_argument("--epochs", type=positive_int, default=20,
                      help="epochs (8 patches/case each)")
    tune.add_argument("--steps", type=positive_int,
                      help="optimiser steps per fold (overrides epochs)")
    tune.add_argument("--folds", type=int, nargs="+", help="folds to fine-tune (default all)")
    tune.add_argument("--learning-rate", type=positive_number, default=5e-4)
    tune.add_argument("--seed", type=non_negative_int, default=0)
    add_device(tune, "the training")
    tune.add_argument("--threads", type=non_negative_int, default=0,
                      help="CPU threads (0: torch default)")
    add_overwrite(tune, "a non-empty output folder")
    tune.set_defaults(run=cmd_finetune)
