"""Network arithmetic on this CPU: float32 against bf16 autocast, and what `auto` picks.

One batch of four 48^3 windows through the built-in U-Net (27.9 GFLOP), each
precision timed after a warm-up, in one run; the argmax agreement between them
on a real case's windows.

With ``--agreement-cases N`` it also predicts N held-out generator cases (2 mm,
seeds 9300 on) in float32 and in bfloat16 through the product's `predict` and
reports, per case, the share of brain voxels whose label agrees and the Dice
between the two label maps per BraTS region (issue 16's bound: 99.9 % and
0.995). On a CPU without native bf16 the bf16 run is emulated and slow;
``--folds`` limits the folds.

    python bench/precision.py
    python bench/precision.py --agreement-cases 2 --folds 0 \
        --json bench/results/precision_agreement.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

AGREEMENT_FIRST_SEED = 9300  # held out (training uses 1000..1059), unused by other benches


def window_speed() -> tuple[list[dict], float]:
    """Seconds for one batch of four windows per precision, and their argmax agreement."""
    from napari_medseg.models import load_model
    from napari_medseg.models.normalise import normalise_image
    from napari_medseg.sample import generate_case

    torch.manual_seed(0)
    network = load_model().networks[0]
    volume = generate_case(9000, spacing=2.0).volume
    image = torch.from_numpy(normalise_image(np.asarray(volume.data), ["zscore_nonzero"] * 4))
    z, y, x = (max(0, (n - 48) // 2) for n in image.shape[1:])
    window = image[:, z:z + 48, y:y + 48, x:x + 48]
    batch = torch.stack([window, window.flip(1), window.flip(2), window.flip(3)])
    rows, outputs = [], {}
    for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
        context = torch.autocast("cpu", dtype=dtype) if dtype else torch.autocast("cpu",
                                                                                 enabled=False)
        with torch.inference_mode(), context:
            network(batch)  # warm-up
            started = time.perf_counter()
            outputs[name] = network(batch).float()
            seconds = time.perf_counter() - started
        rows.append({"precision": name, "seconds": seconds, "gflop_per_s": 27.9 / seconds})
    agree = float((outputs["float32"].argmax(1) == outputs["bfloat16"].argmax(1))
                  .float().mean())
    for row in rows:
        row["speed_vs_float32"] = rows[0]["seconds"] / row["seconds"]
    return rows, agree


def case_agreement(seed: int, model) -> dict:
    """Label maps of one held-out case in float32 and in bfloat16 by ``model`` (a
    LoadedModel), compared on brain voxels."""
    from napari_medseg.inference import predict
    from napari_medseg.labels import BRATS_REGIONS
    from napari_medseg.metrics import dice
    from napari_medseg.progress import run_to_end
    from napari_medseg.sample import generate_case

    volume = generate_case(seed, spacing=2.0).volume
    labels, seconds = {}, {}
    for precision in ("float32", "bfloat16"):
        started = time.perf_counter()
        labels[precision] = run_to_end(predict(model, volume, device="cpu", precision=precision,
                                               keep_probabilities=False)).labels
        seconds[precision] = time.perf_counter() - started
    brain = np.any(np.asarray(volume.data) != 0, axis=0)
    same = labels["float32"][brain] == labels["bfloat16"][brain]
    row = {"seed": seed, "brain_voxels": int(brain.sum()),
           "differing_voxels": int((~same).sum()), "agreement": float(same.mean()),
           "float32_s": seconds["float32"], "bfloat16_s": seconds["bfloat16"]}
    for region, values in BRATS_REGIONS.items():
        row[f"dice_{region}"] = dice(np.isin(labels["float32"], values),
                                     np.isin(labels["bfloat16"], values))
    return row


def main() -> int:
    from _common import print_table, write_json

    from napari_medseg.models.device import autocast_dtype, cpu_has_native_bf16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agreement-cases", type=int, default=0)
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="folds for the agreement cases (default: all)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results"
                                              / "precision.json"))
    args = parser.parse_args()
    rows, agree = window_speed()
    auto = autocast_dtype("auto", "cpu")
    print(f"CPU has native bf16: {cpu_has_native_bf16()}; auto picks "
          f"{str(auto).removeprefix('torch.') if auto else 'float32'}; argmax agreement "
          f"{agree:.5f}")
    print_table(rows, ["precision", "seconds", "gflop_per_s", "speed_vs_float32"])
    command = "python bench/precision.py " + " ".join(sys.argv[1:])
    payload = {"command": command.strip(), "native_bf16": cpu_has_native_bf16(),
               "auto": str(auto), "argmax_agreement": agree, "rows": rows,
               "threads": torch.get_num_threads()}
    if args.agreement_cases:
        from napari_medseg.models import load_model

        model, cases = load_model(folds=args.folds), []
        for seed in range(AGREEMENT_FIRST_SEED, AGREEMENT_FIRST_SEED + args.agreement_cases):
            cases.append(case_agreement(seed, model))
            print(f"seed {seed}: agreement {cases[-1]['agreement']:.5f}", flush=True)
        print_table(cases, ["seed", "brain_voxels", "differing_voxels", "agreement", "dice_WT",
                            "dice_TC", "dice_ET", "float32_s", "bfloat16_s"])
        payload.update(folds=args.folds or "all", agreement_cases=cases)
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
