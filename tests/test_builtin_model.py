"""The shipped model: loads with verified checksums and segments the sample case well."""
from __future__ import annotations

import pytest

from napari_medseg.inference import predict
from napari_medseg.labels import BRATS_REGIONS
from napari_medseg.metrics import region_scores
from napari_medseg.models import builtin_models, load_model
from napari_medseg.progress import run_to_end
from napari_medseg.sample import load_sample_case


def test_builtin_model_is_shipped_with_three_distinct_folds():
    assert "brats_unet" in builtin_models()
    model = load_model("brats_unet")
    assert model.n_folds >= 3
    assert len({fold.sha256 for fold in model.spec.folds}) == model.n_folds
    assert model.spec.input_names == ("T1", "T1ce", "T2", "FLAIR")
    assert any(module.__class__.__name__ == "Dropout3d" for module in model.networks[0].modules())


@pytest.mark.slow
def test_builtin_model_segments_the_sample_case():
    case = load_sample_case()
    prediction = run_to_end(predict(load_model("brats_unet"), case.volume, device="cpu",
                                    keep_probabilities=False))
    scores = region_scores(prediction.labels, case.labels.data, BRATS_REGIONS,
                           case.volume.spacing)
    assert scores["WT"]["dice"] > 0.9, scores
    assert scores["TC"]["dice"] > 0.8, scores
    assert scores["ET"]["dice"] > 0.7, scores
    assert prediction.labels.shape == case.volume.shape
