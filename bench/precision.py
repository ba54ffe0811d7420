"""Network arithmetic on this CPU: float32 against bf16 autocast, and what `auto` picks.

One batch of four 48^3 windows through the built-in U-Net (27.9 GFLOP), each
precision timed after a warm-up, in one run; the argmax agreement between them
on a real case's windows.

    python bench/precision.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    from _common import print_table, write_json

    from napari_medseg.models import load_model
    from napari_medseg.models.device import autocast_dtype, cpu_has_native_bf16
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
    auto = autocast_dtype("auto", "cpu")
    print(f"CPU has native bf16: {cpu_has_native_bf16()}; auto picks "
          f"{str(auto).removeprefix('torch.') if auto else 'float32'}; argmax agreement "
          f"{agree:.5f}")
    print_table(rows, ["precision", "seconds", "gflop_per_s", "speed_vs_float32"])
    write_json(Path(__file__).parent / "results" / "precision.json",
               {"command": "python bench/precision.py", "native_bf16": cpu_has_native_bf16(),
                "auto": str(auto), "argmax_agreement": agree, "rows": rows,
                "threads": torch.get_num_threads()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
