"""Fault bench: kill -9 at random moments during every write path, and a full disk.

For each write path a child process writes the "new" state over an "old"
one and is killed (SIGKILL) after a random delay within the time an
uninterrupted write takes. After each kill the invariant is checked: the
files are the old state or the new state, never a mix (nnU-Net datasets
must also pass nnU-Net's own ``verify_dataset_integrity``). Then the same
write runs again to the end and must leave the new state with no leftovers.
A full disk is a tmpfs a little too small for the new state (needs root;
skipped with a message otherwise): the write must fail with one line and
leave the old state.

    python bench/faults.py --kills 30          # the table in BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHAPE = (60, 64, 64)  # large enough that a write takes a few hundred milliseconds

_CHILD = r"""
import json, sys
import numpy as np
from napari_medseg.io import read_volume
args = json.loads(sys.argv[1])
volume = read_volume(args["images"])
mask = np.load(args["mask"])
print("ready", flush=True)
sys.stdin.readline()  # the parent starts its clock, then says go
kind = args["kind"]
if kind in ("nifti", "zarr", "nnunet"):
    from napari_medseg.export import export_case
    from napari_medseg.labels import label_names
    export_case(volume, mask, kind, args["out"], case_id=args["case_id"],
                label_names=label_names(), dataset_name="Faults", overwrite=args["overwrite"])
elif kind == "predict":
    from napari_medseg.io import atomic_files
    from napari_medseg.io import write_image, write_labels
    probabilities = np.load(args["probabilities"])
    with atomic_files([args["out"] + "/prob.nii.gz", args["out"] + "/seg.nii.gz"], True) as paths:
        write_image(paths[0], probabilities, volume, overwrite=True)
        write_labels(paths[1], mask, volume, overwrite=True)
elif kind == "autosave":
    from napari_medseg.export import autosave
    autosave(mask, [], "labels", content="bench")
print("done", flush=True)
"""


def _case(folder: Path, seed: int):
    """A small 4-contrast case on disk and two different masks (old, new)."""
    from napari_medseg.io import Volume, write_image

    rng = np.random.default_rng(seed)
    data = rng.normal(size=(4, *SHAPE)).astype(np.float32)
    volume = Volume(data, np.diag([1.0, 1.0, 1.0, 1.0]), ("T1", "T1ce", "T2", "FLAIR"))
    images = []
    for index, name in enumerate(volume.channel_names):
        path = folder / f"case_{name.lower()}.nii.gz"
        write_image(path, data[index], volume, overwrite=True)
        images.append(str(path))
    old = rng.integers(0, 4, size=SHAPE).astype(np.uint8)
    new = old.copy()
    new[10:30] = rng.integers(0, 4, size=new[10:30].shape)
    return images, old, new


def _probabilities(mask: np.ndarray) -> np.ndarray:
    one_hot = np.eye(4, dtype=np.float32)[mask]  # the argmax is the mask
    return np.moveaxis(0.1 + 0.6 * one_hot, -1, 0)


class WritePath:
    """One write path: how to make the old state, run the new write, check the result."""

    def __init__(self, kind: str, work: Path, images: list[str], old, new):
        self.kind, self.work, self.images, self.old, self.new = kind, work, images, old, new
        self.out = work / "out"

    def arguments(self, mask: np.ndarray, case_id: str = "case") -> dict:
        np.save(self.work / "mask.npy", mask)
        np.save(self.work / "prob.npy", _probabilities(mask))
        return {"kind": self.kind, "images": self.images, "mask": str(self.work / "mask.npy"),
                "probabilities": str(self.work / "prob.npy"), "out": str(self.out),
                "case_id": case_id, "overwrite": self.kind != "nnunet"}

    def prepare(self) -> None:
        """The old state: the old mask written (and, for nnU-Net, a dataset with one case)."""
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        os.environ["NAPARI_MEDSEG_RECOVERY_DIR"] = str(self.out / "recovery")
        run_child(self.arguments(self.old, "old_case" if self.kind == "nnunet" else "case"))

    def new_write(self) -> dict:
        return self.arguments(self.new, "new_case" if self.kind == "nnunet" else "case")

    def state(self) -> str:
        """``old``, ``new`` or a description of what is wrong."""
        from napari_medseg.io import read_labels

        if self.kind == "nifti":
            from napari_medseg.export._formats import check_export_set

            if not check_export_set(self.out / "case_seg.provenance.json"):
                return "mask and provenance disagree"
            return self._which(read_labels(self.out / "case_seg.nii.gz").data)
        if self.kind == "zarr":
            return self._which(read_labels(self.out / "case_seg.zarr").data)
        if self.kind == "predict":
            labels = read_labels(self.out / "seg.nii.gz").data
            import nibabel as nib

            probabilities = np.asarray(nib.load(self.out / "prob.nii.gz").dataobj)  # X Y Z C
            if not np.array_equal(np.argmax(probabilities, axis=-1).transpose(2, 1, 0), labels):
                return "segmentation and probabilities disagree"
            return self._which(labels)
        if self.kind == "autosave":
            from napari_medseg.export import find_recovery

            return self._which(find_recovery([], "labels", "bench").load())
        return self._nnunet_state()

    def _which(self, labels: np.ndarray) -> str:
        if np.array_equal(labels, self.old):
            return "old"
        return "new" if np.array_equal(labels, self.new) else "neither old nor new"

    def _nnunet_state(self) -> str:
        import contextlib
        import io

        from nnunetv2.experiment_planning.verify_dataset_integrity import (
            verify_dataset_integrity)

        folder = self.out / "Dataset501_Faults"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                verify_dataset_integrity(str(folder), 1)
        except Exception as error:  # nnU-Net's own check failed
            return f"nnU-Net check failed: {type(error).__name__}"
        listed = sorted(json.loads((folder / "dataset.json").read_bytes())["dataset"])
        return {("old_case",): "old", ("new_case", "old_case"): "new"}.get(
            tuple(listed), f"cases {listed}")

    def leftovers(self) -> list[str]:
        return [str(p.relative_to(self.out)) for p in self.out.rglob("*")
                if ".partial-" in p.name or ".staging-" in p.name or ".old-" in p.name]


def run_child(arguments: dict, kill_after: float | None = None) -> tuple[float, str]:
    """Run one write; SIGKILL it ``kill_after`` seconds after it starts writing."""
    process = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(arguments)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    process.stdin.write("go\n")
    process.stdin.flush()
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
    _, error = process.communicate()
    return time.perf_counter() - started, (error.strip().splitlines() or [""])[-1]


def kill_runs(path: WritePath, kills: int, rng: random.Random) -> dict:
    """``kills`` runs killed at random moments; the invariant after each, then a re-run."""
    path.prepare()
    duration, _ = run_child(path.new_write())  # how long an uninterrupted write takes
    held, states, problems = 0, {"old": 0, "new": 0}, []
    for _ in range(kills):
        path.prepare()
        run_child(path.new_write(), kill_after=rng.uniform(0.0, 1.1 * duration))
        state = path.state()
        run_child(path.new_write())  # the user runs the export again
        final, leftovers = path.state(), path.leftovers()
        ok = state in ("old", "new") and final == "new" and not leftovers
        held += ok
        states[state] = states.get(state, 0) + 1
        if not ok:
            problems.append({"after_kill": state, "after_rerun": final, "leftovers": leftovers})
    return {"path": path.kind, "runs": kills, "held": held, "write_s": round(duration, 3),
            "killed_old": states.get("old", 0), "killed_new": states.get("new", 0),
            "problems": problems[:3]}


def disk_full(path: WritePath) -> dict:
    """The new write on a tmpfs too small for it: one line, the old state kept."""
    path.prepare()
    saved = path.out.with_name("saved")
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(path.out, saved)
    used = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + 8 * 1024}",
                              "tmpfs", str(path.out)], capture_output=True, text=True)
    if mounted.returncode != 0:
        return {"path": path.kind, "disk_full": f"skipped: {mounted.stderr.strip()[:80]}"}
    try:
        for item in saved.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, path.out / item.name)
        _, message = run_child(path.new_write())
        state = path.state()
    finally:
        subprocess.run(["umount", str(path.out)], check=False)
    one_line = "disk is full" in message and "Traceback" not in message
    return {"path": path.kind, "disk_full": "held" if one_line and state == "old" else
            f"failed: {state}; {message[:120]}", "message": message}


def main(argv=None) -> int:
    from _common import print_table, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="killed runs per write path")
    parser.add_argument("--paths", nargs="+", default=["nifti", "zarr", "nnunet", "predict",
                                                      "autosave"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/faults.json")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        images, old, new = _case(work, args.seed)
        for kind in args.paths:
            path = WritePath(kind, work / kind, images, old, new)
            path.work.mkdir()
            row = kill_runs(path, args.kills, rng)
            row.update(disk_full(path))
            rows.append(row)
            print(f"{kind}: {row['held']}/{row['runs']} held; disk full {row['disk_full']}",
                  file=sys.stderr, flush=True)
    print_table(rows, ["path", "runs", "held", "killed_old", "killed_new", "write_s",
                       "disk_full"])
    write_json(args.out, {"command": "python bench/faults.py " + " ".join(argv or sys.argv[1:]),
                          "rows": rows})
    return 0 if all(r["held"] == r["runs"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
