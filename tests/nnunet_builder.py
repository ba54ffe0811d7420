"""Small nnU-Net v2 models made with nnU-Net's own code (test helper, needs nnunetv2).

Two generator cases are exported by the plugin as an nnU-Net raw dataset,
fingerprinted and planned by nnU-Net's experiment planning, preprocessed by
its preprocessor, and each fold's checkpoint is written by
``nnUNetTrainer.save_checkpoint`` after the trainer's own initialisation
(seeded He weights, so the output is not constant). A region-based twin
uses BraTS-style regions with ``regions_class_order``.
"""
from __future__ import annotations

import json
import multiprocessing.pool
import os
import shutil
import types
from contextlib import contextmanager
from pathlib import Path

TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__3d_fullres"
REGION_LABELS = {"background": 0, "whole tumour": [1, 2, 3], "tumour core": [1, 3],
                 "enhancing tumour": [3]}


@contextmanager
def _nnunet_paths(root: Path):
    """nnU-Net's three folders under ``root`` (its environment variables), restored after."""
    names = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
    before = {name: os.environ.get(name) for name in names}
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _raw_dataset(root: Path, dataset_id: int, name: str, region_based: bool) -> Path:
    from napari_medseg.export import export_case
    from napari_medseg.sample import generate_case

    for seed in (1, 2):
        case = generate_case(seed, spacing=4.0)
        result = export_case(case.volume, case.labels.data, "nnunet", root / "nnUNet_raw",
                             case_id=f"case{seed}", dataset_name=name, dataset_id=dataset_id,
                             label_names=dict(case.labels.label_names))
    folder = result.output
    if region_based:
        descriptor = json.loads((folder / "dataset.json").read_bytes())
        descriptor["labels"] = REGION_LABELS
        descriptor["regions_class_order"] = [2, 1, 3]
        (folder / "dataset.json").write_text(json.dumps(descriptor, indent=1), encoding="utf-8")
    return folder


def _plan(dataset_id: int) -> dict:
    """nnU-Net's fingerprint (in threads, few samples: fast) and 3d_fullres plans."""
    from nnunetv2.experiment_planning.dataset_fingerprint import fingerprint_extractor
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import (
        ExperimentPlanner)

    fingerprint_extractor.multiprocessing = types.SimpleNamespace(
        get_context=lambda _: types.SimpleNamespace(Pool=multiprocessing.pool.ThreadPool))
    extractor = fingerprint_extractor.DatasetFingerprintExtractor(dataset_id, num_processes=1)
    extractor.num_foreground_voxels_for_intensitystats = 20_000
    extractor.run()
    planner = ExperimentPlanner(dataset_id, gpu_memory_target_in_gb=0.1)
    planner.UNet_base_num_features = 4
    return planner.plan_experiment()


def _preprocess(root: Path, raw: Path, plans: dict, descriptor: dict) -> None:
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    manager = PlansManager(plans)
    configuration = manager.get_configuration("3d_fullres")
    out = root / "nnUNet_preprocessed" / raw.name / configuration.data_identifier
    out.mkdir(parents=True, exist_ok=True)
    for case_id, files in descriptor["dataset"].items():
        DefaultPreprocessor(verbose=False).run_case_save(
            str(out / case_id), [str(raw / f) for f in files["images"]], str(raw / files["label"]),
            manager, configuration, descriptor)


def _save_fold(plans: dict, descriptor: dict, fold: int, folder: Path) -> None:
    import numpy as np
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    torch.manual_seed(fold)
    trainer = nnUNetTrainer(dict(plans, continue_training=False), "3d_fullres", fold, descriptor,
                            device=torch.device("cpu"))
    trainer.initialize()
    *_, mirror_axes = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    trainer.inference_allowed_mirroring_axes = mirror_axes  # as on_train_start sets it
    trainer.logger.log("train_losses", np.float64(0.5), 0)  # as training logs numpy floats
    (folder / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(folder / f"fold_{fold}" / "checkpoint_final.pth"))


def build_model(root: Path, region_based: bool = False, folds=(0, 1)) -> Path:
    """A trained-model folder (``plans.json``, ``dataset.json``, ``fold_*/``) under ``root``."""
    root = Path(root)
    dataset_id, name = (992, "TinyRegions") if region_based else (991, "TinyLabels")
    with _nnunet_paths(root):
        raw = _raw_dataset(root, dataset_id, name, region_based)
        plans = _plan(dataset_id)
        descriptor = json.loads((raw / "dataset.json").read_bytes())
        _preprocess(root, raw, plans, descriptor)
        folder = root / "nnUNet_results" / raw.name / TRAINER_FOLDER
        for fold in folds:
            _save_fold(plans, descriptor, fold, folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans, indent=1), encoding="utf-8")
    shutil.copy(raw / "dataset.json", folder / "dataset.json")
    return folder
