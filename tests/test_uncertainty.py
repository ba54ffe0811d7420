"""Uncertainty: measures vs an independent computation, samplers, calibration, suggestions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_medseg.errors import InputError
from napari_medseg.inference._predict import prepare_input
from napari_medseg.models import load_model
from napari_medseg.models.loading import LoadedModel
from napari_medseg.progress import run_to_end
from napari_medseg.uncertainty import (
    auroc, decompose, draw_samples, estimate_uncertainty, expected_calibration_error,
    suggest_clicks)


def _independent(samples):
    """Straight from the definitions, one voxel at a time."""
    t, k = samples.shape[:2]
    flat = samples.reshape(t, k, -1)
    total, aleatoric = [], []
    for v in range(flat.shape[2]):
        p = flat[:, :, v]
        mean = p.mean(0)
        total.append(-sum(m * np.log(m) for m in mean if m > 0))
        aleatoric.append(np.mean([-sum(q * np.log(q) for q in row if q > 0) for row in p]))
    shape = samples.shape[2:]
    return (np.reshape(total, shape) / np.log(k), np.reshape(aleatoric, shape) / np.log(k))


def test_decomposition_matches_definitions():
    rng = np.random.default_rng(0)
    samples = rng.dirichlet(np.ones(4) * 0.7, size=(6, 3, 4, 5)).transpose(0, 4, 1, 2, 3)
    maps = decompose(samples)
    total, aleatoric = _independent(samples)
    np.testing.assert_allclose(maps["total"], total, atol=1e-5)
    np.testing.assert_allclose(maps["aleatoric"], aleatoric, atol=1e-5)
    np.testing.assert_allclose(maps["epistemic"], np.maximum(total - aleatoric, 0), atol=1e-5)
    assert (maps["epistemic"] >= 0).all() and maps["total"].max() <= 1.0 + 1e-6
    agreeing = np.repeat(samples[:1], 5, axis=0)
    same = decompose(agreeing)
    assert np.abs(same["epistemic"]).max() < 1e-6
    np.testing.assert_allclose(same["total"], same["aleatoric"], atol=1e-6)


class _Voxelwise(torch.nn.Module):
    """A 1x1x1 network: flipping its input flips its output exactly."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(4, 4, 1)

    def forward(self, x):
        return self.conv(x) * 3


def test_tta_flips_are_undone_exactly(tiny_model_folder, small_case):
    spec = load_model(tiny_model_folder).spec
    model = LoadedModel(spec, tiny_model_folder, (_Voxelwise(),))
    image = torch.randn(4, 20, 24, 18)
    samples = run_to_end(draw_samples(model, image, ("tta",), 8))
    assert samples.shape == (8, 4, 20, 24, 18)
    for sample in samples[1:]:
        torch.testing.assert_close(sample, samples[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("precision", ["auto", "float32"])  # auto: bf16 on a native-bf16 CPU
def test_streamed_ensemble_maps_equal_the_definitions_on_each_folds_prediction(
        tiny_model_folder, small_case, precision):
    """The pipeline's streamed measures (one sample at a time, on the case grid) against
    the definitions applied to every fold's own prediction (in the same arithmetic), voxel
    by voxel."""
    from napari_medseg.inference import predict

    volume = small_case.volume
    result = run_to_end(estimate_uncertainty(load_model(tiny_model_folder), volume, "ensemble",
                                             device="cpu", precision=precision))
    folds = [run_to_end(predict(load_model(tiny_model_folder, folds=[f]), volume, device="cpu",
                                precision=precision)) for f in (0, 1)]
    assert result.precision == folds[0].precision
    folds = [fold.probabilities for fold in folds]
    samples = np.stack(folds)
    np.testing.assert_allclose(result.mean, samples.mean(0), atol=1e-5)
    corner = (slice(None), slice(None), slice(0, 6), slice(0, 6), slice(0, 6))
    total, aleatoric = _independent(samples[corner])
    np.testing.assert_allclose(result.maps["total"][corner[2:]], total, atol=1e-4)
    np.testing.assert_allclose(result.maps["aleatoric"][corner[2:]], aleatoric, atol=1e-4)
    assert result.n_samples == 2 and result.maps["epistemic"].max() > 0


def test_mc_dropout_samples_differ_and_streamed_maps_match(tiny_model_folder, small_case):
    model = load_model(tiny_model_folder, folds=[0])
    result = run_to_end(estimate_uncertainty(model, small_case.volume, "mc", samples=4,
                                             reference=small_case.labels.data))
    assert result.n_samples == 4 and result.maps["epistemic"].max() > 0.01
    assert set(result.structures) == {"NCR", "ED", "ET", "WT", "TC"}
    brain = np.any(small_case.volume.data != 0, axis=0)  # the voxels calibration counts
    confidence = result.mean.max(0)[brain]
    correct = (result.labels == small_case.labels.data)[brain]
    gap = abs(float(confidence.mean()) - float(correct.mean()))  # ECE with one bin: a floor
    assert gap - 1e-6 <= result.calibration["ece"] <= 1
    assert set(result.calibration["error_detection_auroc"]) >= {"total", "epistemic"}
    for name in ("total", "aleatoric", "epistemic"):
        assert result.maps[name].shape == small_case.volume.shape
        assert 0 <= result.maps[name].min() and result.maps[name].max() <= 1 + 1e-5


def test_sampled_methods_use_fewer_windows_and_a_plain_ensemble_the_predictions_windows(
        tiny_model_folder, small_case):
    """Flip TTA and MC dropout sample at overlap 0.25 by default (what an explicit 0.25
    gives, not what 0.5 gives); a plain fold ensemble keeps the prediction's 0.5."""
    from napari_medseg.inference._sliding import window_starts

    model = load_model(tiny_model_folder, folds=[0])
    shape = prepare_input(small_case.volume, model.spec).shape[1:]
    patch = model.spec.patch_size
    assert len(window_starts(shape, patch, 0.25)) < len(window_starts(shape, patch, 0.5))
    runs = {overlap: run_to_end(estimate_uncertainty(model, small_case.volume, "tta", 3,
                                                     device="cpu", overlap=overlap))
            for overlap in (None, 0.25, 0.5)}
    assert runs[None].overlap == 0.25 and runs[None].to_dict()["overlap"] == 0.25
    np.testing.assert_array_equal(runs[None].mean, runs[0.25].mean)
    assert np.abs(runs[None].mean - runs[0.5].mean).max() > 1e-3
    assert run_to_end(estimate_uncertainty(load_model(tiny_model_folder), small_case.volume,
                                           "ensemble", device="cpu")).overlap == 0.5


def test_ensemble_uses_each_fold_once(tiny_model_folder, small_case):
    model = load_model(tiny_model_folder)
    result = run_to_end(estimate_uncertainty(model, small_case.volume, "ensemble"))
    assert result.n_samples == 2 and result.method == "ensemble"


def test_bad_requests_are_refused(tiny_model_folder, small_case):
    model = load_model(tiny_model_folder)
    with pytest.raises(InputError, match="T >= 2"):
        run_to_end(estimate_uncertainty(model, small_case.volume, "mc", samples=1))
    no_dropout = LoadedModel(model.spec, tiny_model_folder, (_Voxelwise(),))
    with pytest.raises(InputError, match="no dropout layers.*tta or ensemble"):
        run_to_end(estimate_uncertainty(no_dropout, small_case.volume, "mc"))
    with pytest.raises(InputError, match="unknown uncertainty method"):
        run_to_end(estimate_uncertainty(model, small_case.volume, "bayes"))
    with pytest.raises(InputError, match="differs from the case"):
        run_to_end(estimate_uncertainty(model, small_case.volume, "tta", 2,
                                        reference=np.zeros((3, 3, 3))))


def test_calibration_measures():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.25, 1.0, 200_000)
    correct = rng.random(confidence.size) < confidence  # perfectly calibrated
    ece, diagram = expected_calibration_error(confidence, correct, 15)
    assert ece < 0.01 and len(diagram) == 15
    overconfident = rng.random(confidence.size) < confidence * 0.7
    assert expected_calibration_error(confidence, overconfident)[0] > 0.15
    assert auroc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5


def test_suggestions_rank_likely_errors_near_objects_and_skip_clicked_ones():
    shape = (40, 40, 40)
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 0.98
    probabilities[1] = 0.02
    labels = np.zeros(shape, np.uint8)
    labels[10:30, 10:30, 10:30] = 1
    probabilities[:, 10:30, 10:30, 10:30] = np.array([0.02, 0.96, 0.02])[:, None, None, None]
    probabilities[:, 10:20, 10:20, 10:20] = np.array([0.05, 0.35, 0.6])[:, None, None, None]
    probabilities[:, 30:34, 10:20, 10:20] = np.array([0.45, 0.55, 0.0])[:, None, None, None]
    probabilities[:, 1:3, 36:38, 36:38] = np.array([0.3, 0.7, 0.0])[:, None, None, None]  # far
    suggestions = suggest_clicks(probabilities, labels, spacing=(1.0, 1.0, 1.0))
    assert [(s["current"], s["label"], s["positive"]) for s in suggestions] == [
        (1, 2, True), (0, 1, True)]  # the far speck is not suggested
    first, second = suggestions
    assert first["size"] == 1000 and first["score"] == pytest.approx(650, rel=1e-3)
    assert 10 <= first["point"][0] < 20 and labels[first["point"]] == 1
    assert second["size"] == 400 and 30 <= second["point"][0] < 34
    after = suggest_clicks(probabilities, labels, clicked=[first["point"]])
    assert [s["current"] for s in after] == [0]

def test_shared_encoder_mc_equals_repeated_forward_in_eval_and_differs_with_dropout():
    from napari_medseg.models.unet import UNet3D
    from napari_medseg.uncertainty._sampling import dropout_active

    torch.manual_seed(0)
    network = UNet3D(4, 4, widths=(4, 8, 16, 32), dropout=0.3).eval()
    x = torch.randn(2, 4, 16, 16, 16)
    with torch.no_grad():
        repeated = network(x.repeat(3, 1, 1, 1, 1))
        for per_pass in (4, 2, 1):  # samples in passes: 3, 2 + 1, 1 + 1 + 1
            shared = network.forward_samples(x, 3, per_pass=per_pass)
            torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=1e-4)
        with dropout_active(network, True):
            sampled = network.forward_samples(x, 3, per_pass=2).reshape(3, 2, 4, 16, 16, 16)
        assert not torch.allclose(sampled[0], sampled[1])
        assert not torch.allclose(sampled[1], sampled[2])  # a new pass draws new masks


def test_shared_mc_draws_the_masks_of_the_repeated_forward():
    """Sharing what precedes the first active dropout changes no sample: with one pass,
    the same random state gives the outputs of ``forward`` on the repeated input, with
    every dropout layer active and with the decoder's alone."""
    from napari_medseg.models.unet import UNet3D
    from napari_medseg.uncertainty._sampling import dropout_active

    torch.manual_seed(0)
    network = UNet3D(4, 4, widths=(4, 8, 16, 32), dropout=0.3).eval()
    x = torch.randn(2, 4, 16, 16, 16)
    for within in ("", "decoders"):
        with torch.no_grad(), dropout_active(network, True, within):
            assert network.encoders[-1][-1].training == (within == "")
            assert network.decoders[0][-1].training
            torch.manual_seed(5)
            shared = network.forward_samples(x, 3, per_pass=3)
            torch.manual_seed(5)
            repeated = network(x.repeat(3, 1, 1, 1, 1))
        torch.testing.assert_close(shared, repeated, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(shared[:2], shared[2:4])
        assert not any(m.training for m in network.modules() if isinstance(m, torch.nn.Dropout3d))
