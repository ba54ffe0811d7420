"""nnU-Net v2 trained-model folders, against nnU-Net's own predictor (issue 17).

The models are made by nnU-Net's own planning, preprocessing and trainer
(`tests.nnunet_builder`); the reference is ``nnUNetPredictor`` reading the
same NIfTI files with nnU-Net's own reader.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nnunetv2")

from napari_medseg.errors import InputError  # noqa: E402
from tests.nnunet_builder import build_model  # noqa: E402


@pytest.fixture(scope="session")
def nnunet_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    return {"labels": build_model(root), "regions": build_model(root, region_based=True)}


@pytest.fixture(scope="session")
def case_files(tmp_path_factory):
    from napari_medseg.sample import generate_case
    from napari_medseg.sample._generate import case_files as files_of, write_case

    folder = tmp_path_factory.mktemp("nnunet_case")
    write_case(generate_case(5, spacing=4.0), folder, "held_out")
    return [str(path) for path in files_of(folder, "held_out")[0]]


def nnunet_reference(folder, files, mirroring: bool, folds=None):
    """nnU-Net's own prediction: its reader, ``initialize_from_trained_model_folder``,
    ``predict_single_npy_array`` (labels and probabilities in the source grid)."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=mirroring, device=torch.device("cpu"),
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), folds)
    image, properties = SimpleITKIO().read_images(files)
    return predictor.predict_single_npy_array(image, properties, None, None, True)


def ours(folder, files, mirroring: bool, folds=None):
    from napari_medseg.inference import predict
    from napari_medseg.io import read_volume
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    steps = []
    model = load_model(folder, folds=folds)
    prediction = run_to_end(predict(model, read_volume(files), device="cpu",
                                    mirroring=mirroring), steps.append)
    return model, prediction, steps


@pytest.mark.parametrize("kind, mirroring", [("labels", False), ("labels", True),
                                             ("regions", False)])
def test_prediction_equals_nnunet_predictor(nnunet_models, case_files, kind, mirroring):
    labels, probabilities = nnunet_reference(nnunet_models[kind], case_files, mirroring)
    model, prediction, steps = ours(nnunet_models[kind], case_files, mirroring)
    assert model.n_folds == 2 and model.fold_names == ("0", "1")
    assert prediction.labels.shape == labels.shape  # the source grid
    assert len(np.unique(labels)) > 1  # not a constant output
    np.testing.assert_array_equal(prediction.labels, labels)
    if kind == "labels":
        np.testing.assert_allclose(prediction.probabilities, probabilities, atol=1e-4)
    else:  # per-value probabilities from the region sigmoids; their argmax-free identity:
        from napari_medseg.inference._nnunet import class_probabilities

        order = model.dataset["regions_class_order"]
        np.testing.assert_allclose(prediction.probabilities,
                                   class_probabilities(probabilities, order), atol=1e-4)
        assert model.spec.regions == {"whole tumour": (2, 1, 3), "tumour core": (1, 3),
                                      "enhancing tumour": (3,)}
    assert steps[-1].done == steps[-1].total and len(steps) > 2  # progress per window


def test_one_fold_and_the_spec_from_the_folder(nnunet_models, case_files):
    from napari_medseg.models import read_spec

    spec = read_spec(nnunet_models["labels"])
    assert spec.input_names == ("T1", "T1ce", "T2", "FLAIR")
    assert [info.name for info in spec.labels] == ["NCR", "ED", "ET"]
    assert len(spec.folds) == 2
    model, prediction, _ = ours(nnunet_models["labels"], case_files, False, folds=[1])
    assert model.fold_names == ("1",) and prediction.folds == (0,)
    with pytest.raises(InputError, match="fold 4 does not exist.*folds 0, 1"):
        ours(nnunet_models["labels"], case_files, False, folds=[4])


def test_cli_predicts_an_nnunet_folder_like_nnunet(nnunet_models, case_files, tmp_path,
                                                   capsys):
    from napari_medseg.cli import main
    from napari_medseg.io import read_labels

    out = tmp_path / "seg.nii.gz"
    assert main(["predict", *case_files, "--model", str(nnunet_models["labels"]), "-o",
                 str(out), "--no-mirroring", "--device", "cpu"]) == 0
    labels, _ = nnunet_reference(nnunet_models["labels"], case_files, False)
    np.testing.assert_array_equal(read_labels(out).data, labels)
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(nnunet_models["labels"] / "plans.json", broken)
    assert main(["predict", *case_files, "--model", str(broken), "-o",
                 str(tmp_path / "x.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "not an nnU-Net model folder (no dataset.json)" in err and "Traceback" not in err


def _copy(folder, tmp_path):
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


class Payload:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_checkpoint_with_code_or_objects_is_refused(nnunet_models, tmp_path):
    import torch

    from napari_medseg.models import load_model

    folder = _copy(nnunet_models["labels"], tmp_path)
    path = folder / "fold_1" / "checkpoint_final.pth"
    marker = tmp_path / "ran"
    checkpoint = torch.load(path, weights_only=False)  # the test's own file
    torch.save({**checkpoint, "logging": Payload(marker)}, path)
    with pytest.raises(InputError, match="refused: the checkpoint holds posix.system"):
        load_model(folder)
    assert not marker.exists()
    torch.save({**checkpoint, "extra": __import__("pathlib").PurePosixPath("/etc")}, path)
    with pytest.raises(InputError, match="holds pathlib.PurePosixPath"):
        load_model(folder)


def test_plans_cannot_name_other_classes_and_weights_must_fit(nnunet_models, tmp_path):
    import torch

    from napari_medseg.models import load_model

    folder = _copy(nnunet_models["labels"], tmp_path)
    plans = json.loads((folder / "plans.json").read_bytes())
    architecture = plans["configurations"]["3d_fullres"]["architecture"]
    original = json.dumps(plans)
    architecture["arch_kwargs"]["nonlin"] = "os.system"
    (folder / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    with pytest.raises(InputError, match="nonlin='os.system' is not a torch.nn layer"):
        load_model(folder)
    plans = json.loads(original)
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = "os.system"
    (folder / "plans.json").write_text(json.dumps(plans), encoding="utf-8")
    with pytest.raises(InputError, match="network 'os.system' is not one this plugin loads"):
        load_model(folder)
    (folder / "plans.json").write_text(original, encoding="utf-8")
    path = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(path, weights_only=False)
    weights = dict(checkpoint["network_weights"])
    weights.pop(next(iter(weights)))
    torch.save({**checkpoint, "network_weights": weights}, path)
    with pytest.raises(InputError, match="weights do not fit the plans' network"):
        load_model(folder)
    shutil.rmtree(folder / "fold_0")
    shutil.rmtree(folder / "fold_1")
    with pytest.raises(InputError, match="has no fold_.*checkpoint_final.pth"):
        load_model(folder)


def test_missing_nnunet_package_says_how_to_install(nnunet_models, monkeypatch):
    import sys

    from napari_medseg.models import load_model

    monkeypatch.setitem(sys.modules, "nnunetv2", None)
    with pytest.raises(InputError, match=r"nnU-Net is not installed.*\[nnunet\]"):
        load_model(nnunet_models["labels"])


@pytest.mark.gui
def test_dock_runs_a_chosen_fold_like_nnunet_and_lists_the_folder_after_a_restart(
        nnunet_models, sample_dock, qtbot):
    from napari_medseg.sample import SAMPLE_CASE_ID, case_files as sample_files
    from napari_medseg.sample._sample import SAMPLE_DIR

    folder = nnunet_models["labels"]
    viewer, dock = sample_dock(folder)
    section = dock.model_section
    assert section.folds_combo.count() == 3 and not section.mirroring_box.isHidden()
    mc = dock.uncertainty_section.method_boxes["mc"]  # nnU-Net networks have no dropout
    assert not mc.isEnabled() and not mc.isChecked() and "no dropout" in mc.toolTip()
    assert dock.uncertainty_section.method_boxes["ensemble"].isChecked()
    section.folds_combo.setCurrentIndex(2)  # fold_1 alone
    section.mirroring_box.setChecked(False)
    assert section.run() is not None
    with qtbot.waitSignal(section.runner.settled, timeout=120_000):
        pass
    layer = viewer.layers[f"{folder.parent.name} segmentation"]
    estimate = dock.explain_section.show_estimate()  # nnU-Net runs all 16 subsets itself,
    assert "16 subsets" in estimate or "16 \u00d7" in estimate, estimate
    assert "Explains fold_1 alone" in estimate and "scaled" not in estimate, estimate
    section.folds_combo.setCurrentIndex(0)  # every fold: the run of one fold is scaled up
    assert "for 1 fold, scaled to 2" in dock.explain_section.estimate.text()
    images = [str(path) for path in sample_files(SAMPLE_DIR, SAMPLE_CASE_ID)[0]]
    labels, _ = nnunet_reference(folder, images, False, folds=(1,))
    np.testing.assert_array_equal(layer.data, labels)
    viewer.close()
    _, reopened = sample_dock()  # napari restarted: the added folder is still listed
    entries = [reopened.model_section.model_combo.itemText(i)
               for i in range(reopened.model_section.model_combo.count())]
    assert any(folder.name in entry for entry in entries)


@pytest.mark.parametrize("kind", ["labels", "regions"])
def test_uncertainty_runs_on_nnunet_models(nnunet_models, case_files, kind):
    """The features that run the networks themselves see each label value's probability
    (nnU-Net's softmax, or the region sigmoids combined as nnU-Net paints them), and
    get the fold ensemble and a refusal of MC dropout."""
    import torch

    from napari_medseg.inference._nnunet import class_probabilities
    from napari_medseg.io import read_volume
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import estimate_uncertainty

    model, volume = load_model(nnunet_models[kind]), read_volume(case_files)
    window = torch.randn((1, 4, *model.spec.patch_size))
    with torch.no_grad():
        raw, seen = model.fold_networks[0](window), model.networks[0](window).softmax(1)
    expected = (raw.softmax(1) if kind == "labels" else torch.from_numpy(class_probabilities(
        torch.sigmoid(raw)[0].numpy(), model.dataset["regions_class_order"]))[None])
    torch.testing.assert_close(seen, expected, atol=1e-5, rtol=1e-4)
    result = run_to_end(estimate_uncertainty(model, volume, "ensemble"))
    assert result.mean.shape == (model.spec.n_classes, *volume.shape)
    np.testing.assert_allclose(result.mean.sum(0), 1.0, atol=1e-3)
    assert result.precision == "float32"  # nnU-Net's own predictor on the CPU, whatever auto is
    with pytest.raises(InputError, match="dropout"):
        run_to_end(estimate_uncertainty(model, volume, "mc"))


def test_fine_tuning_an_nnunet_model_points_to_nnunet(nnunet_models, tmp_path):
    from napari_medseg.export import finetune
    from napari_medseg.progress import run_to_end

    with pytest.raises(InputError, match="fine-tuned with nnU-Net.*nnUNetv2_train"):
        run_to_end(finetune(nnunet_models["labels"], tmp_path, tmp_path / "new"))


def test_clicks_topology_export_and_batch_on_an_nnunet_run(nnunet_models, case_files, tmp_path):
    """The paths after a run: model-aware clicks on nnU-Net's probabilities, topology
    from its labels, export to an nnU-Net dataset, and the cohort batch (which takes
    the fold ensemble: nnU-Net networks have no dropout)."""
    from scipy import ndimage as ndi

    from napari_medseg.cohort import run_batch
    from napari_medseg.export import export_case, read_nnunet_dataset
    from napari_medseg.interactive import InteractiveSession, make_engine, robot_click
    from napari_medseg.io import read_volume
    from napari_medseg.progress import run_to_end
    from napari_medseg.sample import generate_case
    from napari_medseg.topology import check_setup, check_topology, report_dict

    folder = nnunet_models["labels"]
    model, prediction, _ = ours(folder, case_files, False)
    volume, reference = read_volume(case_files), generate_case(5, spacing=4.0).labels.data
    start = prediction.labels.astype(np.uint8)
    engine = make_engine("model", volume, probabilities=prediction.probabilities,
                         segmentation_model=folder)
    session = InteractiveSession(volume, start.copy(), label=2, engine=engine)
    click = robot_click(reference == 2, start == 2, volume.spacing)
    session.click(click.position, click.positive)
    changed = session.mask != start
    assert changed[click.position] and ndi.label(changed, np.ones((3, 3, 3)))[1] == 1
    assert set(np.unique(session.mask[changed])) <= ({2} if click.positive else {0, 1, 3})

    on_demand = make_engine("model", volume, segmentation_model=folder)  # no kept run
    InteractiveSession(volume, start.copy(), label=2, engine=on_demand).click(
        click.position, click.positive)
    _, mirrored, _ = ours(folder, case_files, True)  # the engine's run: nnU-Net's, whole case
    np.testing.assert_allclose(on_demand.probabilities, mirrored.probabilities, atol=1e-4)

    setup = check_setup(spec=model.spec)
    assert setup.names == {1: "NCR", 2: "ED", 3: "ET"}
    results = check_topology(start, volume.affine, setup.names, setup.regions,
                             setup.expectations)
    assert json.dumps(report_dict(results, volume.affine))

    exported = export_case(volume, session.mask, "nnunet", tmp_path / "raw", case_id="c1",
                           dataset_name="Corrected",
                           label_names={info.value: info.name for info in model.spec.labels})
    (case_id, back_volume, back_labels), = read_nnunet_dataset(exported.output)
    assert case_id == "c1" and back_volume.channel_names == volume.channel_names
    np.testing.assert_array_equal(back_labels, session.mask)

    cohort = tmp_path / "cohort" / "c1"
    cohort.mkdir(parents=True)
    for path in case_files:
        shutil.copy(path, cohort)
    with pytest.raises(InputError, match="no dropout layers.*tta or ensemble"):
        run_to_end(run_batch(cohort.parent, tmp_path / "out", model=str(folder),
                             scheduler="serial", method="mc"))
    assert not (tmp_path / "out").exists()  # refused before any case ran
    report = run_to_end(run_batch(cohort.parent, tmp_path / "out", model=str(folder),
                                  scheduler="serial"))
    assert report.computed == ("c1",) and not report.failed
    summary = json.loads((tmp_path / "out" / "c1" / "summary.json").read_bytes())
    assert summary["method"] == "ensemble"


@pytest.mark.parametrize("kind", ["labels", "regions"])
def test_uncertainty_samples_of_an_nnunet_model_are_nnunets_own_predictions(
        nnunet_models, case_files, kind):
    """Each fold-ensemble sample is nnU-Net's prediction with that fold alone (its
    preprocessing, windows, mirroring and export), so the maps live on the case grid
    that nnU-Net's prediction does. (Before, the samples came from the plugin's own
    preprocessing and windows: their mean labelled only 61-88 % of brain voxels as
    nnU-Net's prediction does, against 99.5-99.97 % now.)"""
    from napari_medseg.inference._nnunet import class_probabilities
    from napari_medseg.io import read_volume
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import estimate_uncertainty

    folder = nnunet_models[kind]
    model, volume = load_model(folder), read_volume(case_files)
    def reference(mirroring, fold):
        probabilities = nnunet_reference(folder, case_files, mirroring, folds=[fold])[1]
        return probabilities if kind == "labels" else class_probabilities(
            probabilities, model.dataset["regions_class_order"])

    per_fold = [reference(True, fold) for fold in (0, 1)]
    result = run_to_end(estimate_uncertainty(model, volume, "ensemble"))
    assert result.n_samples == 2
    np.testing.assert_allclose(result.mean, np.mean(per_fold, axis=0), atol=1e-4)
    flipped = run_to_end(estimate_uncertainty(model, volume, "tta", samples=3))
    assert flipped.n_samples == 3 and flipped.mean.shape == result.mean.shape
    assert not np.allclose(flipped.mean, reference(False, 0), atol=1e-3)  # flips count


def nnunet_coalitions(folder, files, masks, fold=None):
    """nnU-Net's own labels and probabilities for coalitions of input channels (rows of
    ``masks``): its reader and
    preprocessor, the absent channels set to 0 on the preprocessed grid (the
    zero baseline: each channel's mean after its z-score), its
    ``predict_logits_from_preprocessed_data`` (one fold, or the folds'
    mean logits) and its export to the source grid."""
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape)
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=False, device=torch.device("cpu"),
                                allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), None if fold is None
                                                   else [fold])
    image, properties = SimpleITKIO().read_images(files)
    preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
    data, _, properties = preprocessor.run_case_npy(
        image, None, properties, predictor.plans_manager, predictor.configuration_manager,
        predictor.dataset_json)
    out = []
    for keep in masks:
        logits = predictor.predict_logits_from_preprocessed_data(
            torch.from_numpy(np.where(np.asarray(keep)[:, None, None, None], data, 0)))
        out.append(convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, predictor.plans_manager, predictor.configuration_manager,
            predictor.label_manager, properties, return_probabilities=True))
    return out


@pytest.mark.parametrize("kind", ["labels", "regions"])
def test_shapley_values_of_an_nnunet_model_come_from_nnunets_own_predictions(
        nnunet_models, case_files, kind, tmp_path):
    """Every coalition is predicted by nnU-Net's own pipeline (preprocessing once,
    channels replaced on its grid, windows, export, fold logits averaged), so the
    values equal exact Shapley over nnU-Net's own coalition predictions, per fold
    and for the ensemble, region-based models included; the voxel maps add up to
    the ensemble's probability with every channel minus with none."""
    from napari_medseg.explain import coalition_masks, exact_shapley, explain_case
    from napari_medseg.io import read_volume
    from napari_medseg.metrics import dice
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end

    folder = nnunet_models[kind]
    model, volume = load_model(folder), read_volume(case_files)
    reference = generate_reference()
    if kind == "labels":  # the API, with voxel maps and progress
        steps = []
        result = run_to_end(explain_case(model, volume, reference, device="cpu",
                                         mirroring=False), steps.append)
        assert result.model["method"].startswith("nnU-Net's own pipeline")
        assert steps[-1].done == steps[-1].total and len(steps) > 32  # every window, 16 x 2
        phi = {name: (t.phi, t.fold_phi) for name, t in result.targets.items()}
    else:  # the command line, on the reference file written with the case
        from napari_medseg.cli import main

        output = tmp_path / "shapley.json"
        labels_file = Path(case_files[0]).parent / "held_out_seg.nii.gz"
        assert main(["shapley", *case_files, "--reference", str(labels_file), "--model",
                     str(folder), "--no-mirroring", "--ranking", "none", "--json",
                     str(output)]) == 0
        written = json.loads(output.read_bytes())["targets"]
        phi = {name: (np.array(list(t["phi"].values())),
                      np.array([list(f.values()) for f in t["per_fold_phi"]]))
               for name, t in written.items()}
    targets = {info.name: (info.value,) for info in model.spec.labels}
    targets.update({n: v for n, v in model.spec.regions.items() if len(v) > 1})
    assert set(phi) == set(targets)
    masks = coalition_masks(4)
    # each fold's values against nnU-Net's run of that fold alone: once (the labels model,
    # through the API); the regions model's ensemble through the CLI
    members = ((None, None), (0, 0), (1, 1)) if kind == "labels" else ((None, None),)
    for member, fold in members:
        runs = nnunet_coalitions(folder, case_files, masks, fold)
        labels = [lab for lab, _ in runs]
        assert len({lab.tobytes() for lab in labels}) > 2  # coalitions differ
        for name, values in targets.items():
            dices = np.array([dice(np.isin(lab, values), np.isin(reference, values))
                              for lab in labels])
            got = phi[name][0] if member is None else phi[name][1][member]
            np.testing.assert_allclose(got, exact_shapley(dices), atol=1e-6)
        if member is None:
            full, empty = runs[-1][1], runs[0][1]
    for target in result.targets.values() if kind == "labels" else ():
        change = full[list(target.labels)].sum(0) - empty[list(target.labels)].sum(0)
        np.testing.assert_allclose(target.maps.sum(0), change, atol=1e-4)
        assert np.abs(change).max() > 0.1


def generate_reference():
    from napari_medseg.sample import generate_case

    return generate_case(5, spacing=4.0).labels.data
