"""Cohort batch throughput: serial loop vs a Dask LocalCluster on this machine.

N small generator cases (3 mm) are written to a temporary cohort; the same
batch (built-in model, MC dropout, `--samples` per fold, topology report)
runs once serially in this process (torch using every core) and once on a
LocalCluster of `--workers` processes with one torch thread each. Reported:
wall time, cases per minute, their ratio, and the peak resident memory of
each worker process (and of the serial process).

    .venv/bin/python bench/cohort.py --cases 20 --workers 2 --json bench/results/cohort.json
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from _common import HELD_OUT_FIRST_SEED, print_table, write_json
from napari_medseg.cohort import run_batch
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case, write_case


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; getrusage's ru_maxrss survives fork)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--json", default="bench/results/cohort.json")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index in range(args.cases):
            seed = HELD_OUT_FIRST_SEED + 200 + index
            write_case(generate_case(seed, spacing=3.0), root / "cohort" / f"case{index:03d}",
                       f"case{index:03d}")
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        serial = run_to_end(run_batch(root / "cohort", root / "serial", scheduler="serial",
                                      samples=args.samples))
        serial_s = time.perf_counter() - started
        serial_rss = peak_rss_mib()
        started = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            startup_s = time.perf_counter() - started
            parallel = run_to_end(run_batch(root / "cohort", root / "dask",
                                            scheduler=cluster.scheduler_address,
                                            samples=args.samples))
            dask_s = time.perf_counter() - started
            work_s = dask_s - startup_s
            worker_rss = sorted(client.run(peak_rss_mib).values())
    assert len(serial.computed) == len(parallel.computed) == args.cases
    rows = [{"run": "serial (1 process, torch on all cores)", "wall s": round(serial_s, 1),
             "cases/min": round(60 * args.cases / serial_s, 2),
             "peak RSS MiB": f"{serial_rss:.0f} (process; {rss_before:.0f} before)"},
            {"run": f"Dask LocalCluster ({args.workers} workers x 1 thread)",
             "wall s": round(dask_s, 1), "cases/min": round(60 * args.cases / dask_s, 2),
             "peak RSS MiB": " / ".join(f"{v:.0f}" for v in worker_rss) + " (per worker)"},
            {"run": "  the same, after the cluster started", "wall s": round(work_s, 1),
             "cases/min": round(60 * args.cases / work_s, 2), "peak RSS MiB": ""}]
    print_table(rows, ["run", "wall s", "cases/min", "peak RSS MiB"])
    print(f"\nthroughput ratio Dask / serial: {serial_s / dask_s:.2f} "
          f"({serial_s / work_s:.2f} after the {startup_s:.1f} s cluster start-up)")
    write_json(args.json, {"command": "bench/cohort.py", "cases": args.cases,
                           "workers": args.workers, "samples": args.samples,
                           "torch_threads_serial": torch.get_num_threads(),
                           "serial_s": round(serial_s, 2), "dask_s": round(dask_s, 2),
                           "throughput_ratio": round(serial_s / dask_s, 3),
                           "cluster_startup_s": round(startup_s, 2),
                           "throughput_ratio_after_startup": round(serial_s / work_s, 3),
                           "serial_peak_rss_mib": round(serial_rss, 1),
                           "worker_peak_rss_mib": [round(v, 1) for v in worker_rss],
                           "rows": rows})


if __name__ == "__main__":
    main()
