"""Helpers shared by the benchmark scripts: tables, JSON, held-out cases."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_FIRST_SEED = 9000  # training uses seeds 1000..1059; these are never seen


def machine() -> dict:
    """Where the figures were taken."""
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print rows as a Markdown table (pasteable into BENCHMARKS.md)."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        print("| " + " | ".join(cells) + " |")


def write_json(path: str | Path, payload: dict) -> None:
    """Write results with the machine description and the time."""
    payload = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **payload}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


def abba_times(names: list[str], seconds, rounds: int) -> dict[str, list[float]]:
    """Time each of ``names`` once per round, in order, then reversed (ABBA), within one
    process: this machine's speed drifts, and alternating cancels a steady drift.
    ``seconds(name)`` runs one and returns its time."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            times[name].append(seconds(name))
    return times


def brats_sized_case(seed: int, shape_zyx=(155, 240, 240), with_labels: bool = False):
    """A generated case at 1 mm, zero-padded/cropped to BraTS' 240x240x155 grid."""
    from napari_medseg.io import Volume
    from napari_medseg.sample import generate_case

    case = generate_case(seed, spacing=1.0)
    data = np.zeros((case.volume.n_channels, *shape_zyx), np.float32)
    labels = np.zeros(shape_zyx, np.uint8)
    source = case.volume.data
    slices_out, slices_in = [], []
    for have, want in zip(source.shape[1:], shape_zyx):
        if have <= want:
            start = (want - have) // 2
            slices_out.append(slice(start, start + have))
            slices_in.append(slice(0, have))
        else:
            start = (have - want) // 2
            slices_out.append(slice(0, want))
            slices_in.append(slice(start, start + want))
    data[(slice(None), *slices_out)] = source[(slice(None), *slices_in)]
    labels[tuple(slices_out)] = case.labels.data[tuple(slices_in)]
    volume = Volume(data, case.volume.affine, case.volume.channel_names)
    return (volume, labels) if with_labels else volume


def stored_lps(image):
    """The same scan with its voxels stored LPS (nibabel's reorientation; x and y reversed
    for a RAS file): one world, another grid.

    Parameters
    ----------
    image : nibabel.spatialimages.SpatialImage
        A scan.
    """
    import nibabel as nib

    to_lps = nib.orientations.ornt_transform(nib.io_orientation(image.affine),
                                             nib.orientations.axcodes2ornt("LPS"))
    return image.as_reoriented(to_lps)


def current_rss_mib() -> float:
    """Resident memory of this process now (MiB, Linux /proc)."""
    import os

    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Samples resident memory every 2 ms inside a ``with`` block.

    ``increase_mib`` is the block's peak minus the memory at its start: what
    the block itself needed, whatever the process held before.
    """

    def __enter__(self) -> "PeakRSS":
        import threading

        self.start_mib = self.peak_mib = current_rss_mib()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.002):
                self.peak_mib = max(self.peak_mib, current_rss_mib())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, current_rss_mib())

    @property
    def increase_mib(self) -> float:
        """Peak during the block minus the start."""
        return self.peak_mib - self.start_mib


def first_fold(model):
    """``model`` (a LoadedModel) with its first fold only: the single-prediction yardstick."""
    from napari_medseg.models.loading import LoadedModel

    return LoadedModel(model.spec, model.folder, model.networks[:1])


def single_prediction_seconds(single, volume, precision: str = "auto") -> float:
    """Wall time of one prediction of ``volume`` by ``single`` (see `first_fold`) on the CPU,
    in ``precision``: the yardstick the uncertainty estimates' costs are divided by."""
    import time

    from napari_medseg.inference import predict
    from napari_medseg.progress import run_to_end

    started = time.perf_counter()
    run_to_end(predict(single, volume, device="cpu", keep_probabilities=False,
                       precision=precision))
    return time.perf_counter() - started


def uncertainty_case(index: int):
    """The ``index``-th held-out uncertainty case: ``(seed, hard, case)``, seeds 9200 on,
    2 mm; the odd ones harder than anything in training (Rician noise 0.07-0.10, log
    bias field 0.2-0.3, against 0.015-0.05 and 0.05-0.15)."""
    from napari_medseg.sample import AcquisitionSettings, PhantomSettings, generate_case

    hard = index % 2 == 1
    seed = HELD_OUT_FIRST_SEED + 200 + index
    settings = PhantomSettings(acquisition=AcquisitionSettings(noise=(0.07, 0.1),
                                                               bias=(0.2, 0.3)))
    return seed, hard, generate_case(seed, spacing=2.0, settings=settings if hard else None)
