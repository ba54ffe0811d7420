"""One case of a cohort: segmentation, uncertainty maps and a topology report.

Runs inside a Dask worker (or the serial loop). The model is loaded once per
worker process and kept. Outputs go to ``OUTPUT/{case}/`` and each is
written atomically; ``summary.json`` is written last, so its presence means
the case is complete (a rerun skips it).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_medseg.cohort._discover import CaseInput
from napari_medseg.io import atomic_path, json_text

SUMMARY = "summary.json"
_MODELS: dict[str, object] = {}


def case_folder(output_dir: str | Path, case_id: str) -> Path:
    """Where a case's outputs go.

    Parameters
    ----------
    output_dir : str or Path
        The batch's output folder.
    case_id : str
        The case.
    """
    return Path(output_dir) / case_id


def is_done(output_dir: str | Path, case_id: str) -> bool:
    """True when the case's summary exists and is whole (it is written last, atomically).

    A summary that is not a JSON object naming the case (truncated, ``{}``,
    edited by hand) does not count: the case is computed again.

    Parameters
    ----------
    output_dir : str or Path
        The batch's output folder.
    case_id : str
        The case.
    """
    try:
        summary_file = case_folder(output_dir, case_id) / SUMMARY
        summary = json.loads(summary_file.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("case_id") == case_id


def worker_model(name: str):
    """The model, loaded once per process (Dask workers keep it between tasks)."""
    from napari_medseg.models import load_model

    if name not in _MODELS:
        _MODELS[name] = load_model(name)
    return _MODELS[name]


def _topology_summary(labels: np.ndarray, affine: np.ndarray, spec) -> dict:
    from napari_medseg.topology import check_setup, check_topology, report_dict

    setup = check_setup(spec=spec)
    results = check_topology(labels, affine, setup.names, setup.regions, setup.expectations)
    return report_dict(results, affine, 26)


def process_case(case: CaseInput, output_dir: str | Path, model_name: str = "brats_unet",
                 method: str = "auto", samples: int = 4, device: str = "auto",
                 threads: int | None = None, precision: str = "auto",
                 resample: bool = False) -> dict:
    """Segment ``case``, estimate uncertainty, check topology; write outputs; return the summary.

    Parameters
    ----------
    case : CaseInput
        Id and contrast files.
    output_dir : path-like
        Cohort output folder.
    model_name : str
        Built-in model name or model folder.
    method, samples :
        Uncertainty method (``auto``, ``mc``, ``tta``, ``ensemble``) and samples per fold.
    device : str
        Torch device: ``auto`` (CUDA, then MPS, then the CPU), ``cuda``, ``mps`` or ``cpu``.
    threads : int, optional
        Torch CPU threads in this worker.
    precision : str
        The network's arithmetic (see `inference.predict`; ``auto`` by default).
    resample : bool
        Contrasts on different grids go onto the finest one (`io.on_one_grid`).
    """
    import torch

    from napari_medseg.io import read_volume, write_image, write_labels
    from napari_medseg.uncertainty import estimate_uncertainty
    from napari_medseg.progress import run_to_end

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    model = worker_model(model_name)
    volume = read_volume(list(case.images), resample=resample)
    result = run_to_end(estimate_uncertainty(model, volume, method, samples, device=device,
                                             precision=precision))
    folder = case_folder(output_dir, case.case_id)
    folder.mkdir(parents=True, exist_ok=True)
    names = {info.value: info.name for info in model.spec.labels}
    write_labels(folder / "seg.nii.gz", result.labels, volume, label_names=names, overwrite=True)
    write_image(folder / "epistemic.nii.gz", result.maps["epistemic"], volume, overwrite=True)
    write_image(folder / "total_uncertainty.nii.gz", result.maps["total"], volume,
                overwrite=True)
    topology = _topology_summary(result.labels, volume.affine, model.spec)
    with atomic_path(folder / "topology.json", overwrite=True) as temporary:
        temporary.write_text(json_text(topology, indent=1), encoding="utf-8")
    foreground = ndi.binary_dilation(result.labels > 0, iterations=2)
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    summary = {
        "case_id": case.case_id, "images": [str(p) for p in case.images],
        "model": {"name": model.spec.name, "version": model.spec.version},
        "method": result.method, "samples": result.n_samples, "precision": result.precision,
        "epistemic_foreground": float(result.maps["epistemic"][foreground].mean())
        if foreground.any() else 0.0,
        "volumes_ml": {names[v]: round(float((result.labels == v).sum()) * voxel_ml, 3)
                       for v in names},
        "volume_cv": {k: v.get("volume_cv") for k, v in result.structures.items()},
        "topology_errors": {k: len(v["errors"]) for k, v in topology["targets"].items()},
        "topology_mismatch": sorted(k for k, v in topology["targets"].items()
                                    if v["expected"] and not v["matches_expected"]),
        "seconds": round(time.perf_counter() - started, 2), "worker_pid": os.getpid()}
    with atomic_path(folder / SUMMARY, overwrite=True) as temporary:
        temporary.write_text(json_text(summary, indent=1), encoding="utf-8")
    return summary
