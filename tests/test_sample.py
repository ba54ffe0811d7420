"""The BraTS-like generator: deterministic, varied, and physically consistent."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.labels import BRATS_LABELS
from napari_medseg.sample import (
    SAMPLE_CASE_ID, SAMPLE_SEED, case_files, generate_case, load_sample_case, write_case)
from napari_medseg.sample._sample import SAMPLE_DIR, SAMPLE_SPACING_MM

NCR, ED, ET = (info.value for info in BRATS_LABELS)


def test_same_seed_same_case_other_seed_other_case():
    a, b, c = generate_case(3, spacing=3.0), generate_case(3, spacing=3.0), generate_case(4, 3.0)
    np.testing.assert_array_equal(a.volume.data, b.volume.data)
    np.testing.assert_array_equal(a.labels.data, b.labels.data)
    assert a.info == b.info
    assert not np.array_equal(a.labels.data, c.labels.data)
    assert a.info["tumour"] != c.info["tumour"]
    assert not np.allclose(a.volume.data, c.volume.data)


def test_cases_vary_in_size_location_and_shape():
    cases = [generate_case(seed, spacing=3.0) for seed in range(100, 108)]
    volumes = [int((case.labels.data > 0).sum()) for case in cases]
    centres = np.array([np.argwhere(case.labels.data > 0).mean(0) for case in cases])
    assert max(volumes) > 2 * min(volumes)
    assert np.linalg.norm(centres - centres.mean(0), axis=1).mean() > 5  # voxels
    lobes = {len(case.info["tumour"]["lobes"]) for case in cases}
    assert len(lobes) >= 3  # single- and multi-lobed tumours of several shapes


def _mean(case, contrast, mask):
    return float(case.volume.channel(contrast)[mask].mean())


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_labels_sit_where_the_contrasts_say(seed):
    case = generate_case(seed, spacing=2.0)
    labels = case.labels.data
    brain = case.volume.channel("T1") > 0
    healthy = brain & (labels == 0)
    white_matter = healthy & (case.volume.channel("T1") > np.percentile(
        case.volume.channel("T1")[healthy], 75))
    enhancing, oedema = labels == ET, labels == ED
    assert enhancing.any() and oedema.any()
    # enhancing rim: brighter on T1ce than white matter, and it gains far more from
    # contrast (T1ce / T1) than white matter does (per-contrast gains cancel)
    assert _mean(case, "T1ce", enhancing) > 1.15 * _mean(case, "T1ce", white_matter)
    uptake = _mean(case, "T1ce", enhancing) / _mean(case, "T1", enhancing)
    baseline = _mean(case, "T1ce", white_matter) / _mean(case, "T1", white_matter)
    assert uptake > 1.4 * baseline
    assert _mean(case, "T1", enhancing) < _mean(case, "T1", white_matter)
    # oedema: bright on FLAIR and T2 relative to white matter
    assert _mean(case, "FLAIR", oedema) > 1.25 * _mean(case, "FLAIR", white_matter)
    assert _mean(case, "T2", oedema) > 1.25 * _mean(case, "T2", white_matter)
    necrosis = labels == NCR
    if necrosis.sum() > 20:
        assert _mean(case, "T1ce", necrosis) < 0.7 * _mean(case, "T1ce", enhancing)
        assert _mean(case, "T2", necrosis) > _mean(case, "T2", white_matter)
    # tumour inside the brain; images zero outside it (skull-stripped)
    assert not (labels > 0)[~brain].any()


def test_spacing_sets_the_grid():
    coarse, fine = generate_case(5, spacing=3.0), generate_case(5, spacing=(2.0, 1.5, 1.5))
    assert coarse.volume.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert fine.volume.spacing == pytest.approx((2.0, 1.5, 1.5))
    extent_coarse = np.array(coarse.volume.shape) * 3.0
    extent_fine = np.array(fine.volume.shape) * np.array([2.0, 1.5, 1.5])
    np.testing.assert_allclose(extent_coarse, extent_fine, atol=3.0)


def test_write_case_then_read_back(tmp_path, small_case):
    written = write_case(small_case, tmp_path, "case_x")
    from napari_medseg.io import read_labels, read_volume

    images, reference = case_files(tmp_path, "case_x")
    volume = read_volume(images)
    assert volume.channel_names == ("T1", "T1ce", "T2", "FLAIR")
    np.testing.assert_allclose(volume.data, np.round(small_case.volume.data), atol=0.5)
    np.testing.assert_array_equal(read_labels(reference).data, small_case.labels.data)
    assert written["info"].exists()


def test_committed_sample_case_matches_its_seed():
    case = load_sample_case()
    images, reference = case_files(SAMPLE_DIR, SAMPLE_CASE_ID)
    assert all(path.exists() for path in (*images, reference))
    regenerated = generate_case(SAMPLE_SEED, spacing=SAMPLE_SPACING_MM)
    np.testing.assert_array_equal(case.labels.data, regenerated.labels.data)
    np.testing.assert_allclose(case.volume.data, regenerated.volume.data, atol=0.51)
    assert case.volume.spacing == pytest.approx((1.5, 1.5, 1.5))
    assert {int(v) for v in np.unique(case.labels.data)} == {0, NCR, ED, ET}
