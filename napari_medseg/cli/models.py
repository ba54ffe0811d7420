"""Model subcommands of the command line: ``models`` and ``predict``."""
from __future__ import annotations

import argparse
import json
import sys

from napari_medseg.cli.common import (
    add_contrasts, add_device, add_folds, add_mirroring, add_overlap, add_overwrite,
    add_precision, positive_int, progress_printer, read_case)


def spec_summary(name: str, folder) -> dict:
    """What ``models`` prints for one model.

    Parameters
    ----------
    name : str
        The model's name in the list.
    folder : Path
        Its folder.
    """
    from napari_medseg.models import read_spec

    spec = read_spec(folder)
    return {"name": name, "version": spec.version, "task": spec.task, "folder": str(folder),
            "inputs": [f"{i.name} ({i.normalization})" for i in spec.inputs],
            "labels": {info.value: info.name for info in spec.labels},
            "patch_size": list(spec.patch_size), "spacing_mm": list(spec.spacing),
            "folds": len(spec.folds), "description": spec.description}


def cmd_models(args: argparse.Namespace) -> int:
    from napari_medseg.errors import MedsegError
    from napari_medseg.models import available_devices, builtin_models
    from napari_medseg.models.device import autocast_dtype, precision_name
    from napari_medseg.models.registry import remembered_folders, user_models

    listed = {**builtin_models(task=None), **user_models(task=None),
              **{str(folder): folder for folder in remembered_folders()}}
    records = []
    for name, folder in listed.items():
        try:
            records.append(spec_summary(name, folder))
        except MedsegError as error:  # a broken user model is named, not fatal
            print(f"skipped: {error}", file=sys.stderr)
    auto = {device: precision_name(autocast_dtype("auto", device))
            for device in available_devices()}  # what --precision auto runs in on each
    if args.json:
        print(json.dumps({"models": records, "devices": available_devices(),
                          "auto_precision": auto}, indent=2))
        return 0
    for record in records:
        print(f"{record['name']} {record['version']} [{record['task']}]  ({record['folder']})\n"
              f"  inputs   {', '.join(record['inputs'])}\n"
              f"  labels   {', '.join(f'{k} {v}' for k, v in record['labels'].items())}\n"
              f"  patch    {record['patch_size']} at {record['spacing_mm']} mm, "
              f"{record['folds']} folds")
    print(f"devices: {', '.join(available_devices())}")
    print("precision auto: " + ", ".join(f"{precision} on {device}"
                                         for device, precision in auto.items()))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from napari_medseg.inference import predict
    from napari_medseg.io import (
        atomic_files,
        check_output_format,
        check_writable,
        write_image,
        write_labels,
    )
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    check_writable(args.output, args.overwrite)
    check_output_format(args.output)
    if args.probabilities:
        check_writable(args.probabilities, args.overwrite)
        check_output_format(args.probabilities, channels=2)
    volume = read_case(args, stored_types=True)
    model = load_model(args.model, folds=args.folds, trust_code=args.trust_code)
    prediction = run_to_end(
        predict(model, volume, device=args.device, overlap=args.overlap,
                batch_size=args.batch_size, keep_probabilities=bool(args.probabilities),
                precision=args.precision, mirroring=not args.no_mirroring),
        progress_printer("predict"))
    for note in prediction.notes:
        print(f"napari-medseg: note: {note}", file=sys.stderr)
    names = {info.value: info.name for info in model.spec.labels}
    targets = [args.probabilities] if args.probabilities else []
    with atomic_files([*targets, args.output], args.overwrite) as temporaries:  # a set
        if args.probabilities:
            write_image(temporaries[0], prediction.probabilities, volume, overwrite=True)
        write_labels(temporaries[-1], prediction.labels, volume, label_names=names,
                     overwrite=True)
    counts = {names[v]: int((prediction.labels == v).sum()) for v in names}
    print(f"{args.output}: {model.spec.name} {model.spec.version} on {prediction.device} "
          f"({prediction.precision}), "
          f"{len(prediction.folds)} folds; voxels {counts}")
    return 0


def add_model_commands(commands) -> None:
    """Register ``models`` and ``predict`` on the subcommand parser."""
    from pathlib import Path

    models = commands.add_parser("models", help="list installed models and devices")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(run=cmd_models)

    predict = commands.add_parser("predict", help="segment a case with a model (all folds)")
    predict.add_argument("images", nargs="+", help="one file per contrast (any order, named by "
                         "contrast, e.g. *_t1ce.nii.gz) or one 4D file")
    add_contrasts(predict)
    predict.add_argument("-o", "--output", required=True, type=Path, help="label file to write")
    predict.add_argument("--model", default=None, help="built-in name, model folder, or "
                         "nnU-Net v2 trained-model folder (default brats_unet)")
    add_folds(predict)
    add_mirroring(predict)
    predict.add_argument("--trust-code", action="store_true",
                        help="allow TorchScript weights (their code runs when loaded)")
    add_device(predict)
    predict.add_argument("--probabilities", type=Path, help="also write class probabilities "
                         "(4D NIfTI)")
    add_precision(predict)
    add_overlap(predict, 0.5, "window overlap (0.5)")
    predict.add_argument("--batch-size", type=positive_int, default=None,
                         help="windows per pass (default: sized for the device and precision)")
    add_overwrite(predict)
    predict.set_defaults(run=cmd_predict)
