"""Fine-tuning on corrected cases: Dice before/after on a shift and on the original data.

The shift: generator cases whose enhancing tumour barely enhances on T1ce
and whose oedema is dim on FLAIR (`signal_overrides`), outside what the
built-in model saw in training. "Corrected" cases of that shift (their
references, as an annotator would leave them after refinement) are exported
to an nnU-Net v2 dataset with `export_case`, the model is fine-tuned on them
with `finetune` (fold 0), and Dice is measured on held-out cases of the
shift and of the original distribution, before and after.

    .venv/bin/python bench/finetune.py --cases 12 --held-out 6 --json bench/results/finetune.json
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from _common import HELD_OUT_FIRST_SEED, print_table, write_json
from napari_medseg.export import export_case, finetune
from napari_medseg.export._finetune import validation_dice
from napari_medseg.labels import label_names
from napari_medseg.models import load_model
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case
from napari_medseg.sample._contrasts import AcquisitionSettings
from napari_medseg.sample._generate import PhantomSettings

SHIFT = PhantomSettings(acquisition=AcquisitionSettings(
    signal_overrides={"T1ce": {"ET": 0.95}, "FLAIR": {"ED": 0.7}}))
SPACING = 2.0


def cases(first_seed: int, count: int, settings=None) -> list:
    out = []
    for seed in range(first_seed, first_seed + count):
        case = generate_case(seed, spacing=SPACING, settings=settings)
        out.append((f"s{seed}", case.volume, case.labels.data))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="corrected shifted cases")
    parser.add_argument("--held-out", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="bench/results/finetune.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shifted_test = cases(HELD_OUT_FIRST_SEED + 100, args.held_out, SHIFT)
    original_test = cases(HELD_OUT_FIRST_SEED, args.held_out)
    base = load_model("brats_unet", folds=[0])
    before = {"shifted": validation_dice(base, shifted_test, device),
              "original": validation_dice(base, original_test, device)}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for case_id, volume, labels in cases(3000, args.cases, SHIFT):
            dataset = export_case(volume, labels, "nnunet", root, case_id=case_id,
                                  label_names=label_names(), dataset_name="Shifted").output
        started = time.perf_counter()
        result = run_to_end(finetune("brats_unet", dataset, root / "tuned", epochs=args.epochs,
                                     folds=[0], device=device),
                            lambda p: print(p.message, flush=True) if p.done % 100 == 0
                            else None)
        minutes = (time.perf_counter() - started) / 60
        tuned = load_model(result.folder)
        after = {"shifted": validation_dice(tuned, shifted_test, device),
                 "original": validation_dice(tuned, original_test, device)}
        steps = tuned.spec.training["steps_per_fold"]
    rows = []
    for distribution in ("shifted", "original"):
        for region in before[distribution]:
            b, a = before[distribution][region], after[distribution][region]
            rows.append({"held-out cases": distribution, "region": region, "Dice before": b,
                         "Dice after": a, "change": round(a - b, 4)})
    print_table(rows, ["held-out cases", "region", "Dice before", "Dice after", "change"])
    print(f"\nfine-tuning: {steps} steps on {len(result.train_cases)} cases "
          f"({len(result.val_cases)} validation) in {minutes:.1f} min on {device}")
    write_json(args.json, {"command": "bench/finetune.py", "shift": SHIFT.acquisition
                           .signal_overrides, "corrected_cases": args.cases,
                           "held_out": args.held_out, "epochs": args.epochs, "steps": steps,
                           "minutes": round(minutes, 2), "device": device, "rows": rows,
                           "validation": {"before": result.dice_before,
                                          "after": result.dice_after}})


if __name__ == "__main__":
    main()
