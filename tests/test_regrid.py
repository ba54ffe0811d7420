"""Contrasts on different grids: resampled onto the finest one (core, CLI and batch)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from nibabel.processing import resample_from_to

from napari_medseg.cli import main
from napari_medseg.io import is_exact_copy, on_one_grid, onto_grid, read_labels, read_volume
from napari_medseg.sample import case_files, write_case
from tests.conftest import rotation


def _stored_lps(path, out):
    """The same scan, its voxels stored LPS by nibabel's reorientation: one world."""
    image = nib.load(str(path))
    to_lps = nib.orientations.ornt_transform(nib.io_orientation(image.affine),
                                             nib.orientations.axcodes2ornt("LPS"))
    nib.save(image.as_reoriented(to_lps), str(out))
    return out


def test_a_flipped_or_transposed_grid_is_copied_exactly(tmp_path, small_case):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    lps = _stored_lps(images[3], tmp_path / "c_lps_flair.nii.gz")
    ras, flipped = read_volume(images[3], keep_integers=True), read_volume(lps, keep_integers=True)
    assert is_exact_copy(flipped.affine, ras.affine)
    back = onto_grid(flipped.data[0], flipped.affine, ras.affine, ras.shape)
    assert back.dtype == ras.data.dtype and np.array_equal(back, ras.data[0])
    swap = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    stored_zyx = onto_grid(ras.data[0], ras.affine, ras.affine @ swap, ras.shape[::-1])
    assert np.array_equal(stored_zyx, ras.data[0].transpose(2, 1, 0))


@pytest.mark.parametrize("seed", range(6))
def test_a_copy_takes_each_voxel_where_nearest_neighbour_does(seed):
    """Any signed axis order and whole-voxel shift, the grids overlapping only in part:
    the sliced copy equals SciPy's nearest-neighbour resampling through the same mapping,
    voxel for voxel, 0 where the target reaches past the scan, in the stored type."""
    from scipy import ndimage

    from napari_medseg.io._regrid import _voxel_mapping

    rng = np.random.default_rng(seed)
    data = rng.integers(1, 1000, size=(7, 9, 11)).astype(np.int16)  # z, y, x
    source_affine = np.diag([*rng.uniform(0.5, 2.0, 3), 1.0])
    source_affine[:3, 3] = rng.uniform(-20, 20, 3)
    turn = np.eye(4)
    turn[:3, :3] = np.eye(3)[rng.permutation(3)] * rng.choice([-1, 1], 3)
    target_voxels = turn.copy()  # target voxel -> source voxel (x, y, z): the first target
    # voxel reads near the scan's first voxel along a kept axis, its last along a flipped one
    flipped_end = np.where(turn[:3, :3].sum(axis=1) < 0, np.array([11, 9, 7]) - 1, 0)
    target_voxels[:3, 3] = flipped_end + rng.integers(-3, 4, 3)
    target_affine = source_affine @ target_voxels
    target_shape = tuple(int(n) for n in rng.integers(4, 14, 3))
    mapping = _voxel_mapping(source_affine, target_affine)
    assert is_exact_copy(source_affine, target_affine)
    expected = ndimage.affine_transform(data, np.round(mapping[:3, :3]),
                                        offset=np.round(mapping[:3, 3]), order=0,
                                        output_shape=target_shape, mode="constant", cval=0)
    copied = onto_grid(data, source_affine, target_affine, target_shape)
    assert copied.dtype == np.int16 and copied.shape == target_shape
    assert 0 < (expected == 0).mean() < 1  # the grids overlap in part
    np.testing.assert_array_equal(copied, expected)
    assert onto_grid(data, source_affine, target_affine, target_shape, labels=True).dtype == \
        np.int16


def test_labels_onto_an_oblique_grid_take_the_nearest_voxel_as_nibabel_does():
    target_affine = np.eye(4)
    source_affine = np.eye(4)
    source_affine[:3, :3] = rotation(12.0, 5.0) @ np.diag([2.0, 2.0, 4.0])
    source_affine[:3, 3] = [-3.0, -2.0, -6.0]
    labels = np.zeros((20, 22, 10), np.uint8)  # x, y, z
    labels[4:12, 5:15, 2:7], labels[8:16, 10:18, 4:9] = 1, 3
    expected = np.asarray(resample_from_to(nib.Nifti1Image(labels, source_affine),
                                           ((36, 40, 34), target_affine), order=0).dataobj)
    ours = onto_grid(labels.transpose(2, 1, 0), source_affine, target_affine, (34, 40, 36),
                     labels=True)
    assert ours.dtype == np.uint8 and set(np.unique(ours)) == {0, 1, 3}
    np.testing.assert_array_equal(ours, expected.transpose(2, 1, 0))


def test_an_oblique_coarser_grid_is_interpolated_as_nibabel_does(tmp_path):
    rng = np.random.default_rng(3)
    target_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    target_affine[:3, 3] = [-20.0, -24.0, -16.0]
    source_affine = np.eye(4)
    source_affine[:3, :3] = rotation(15.0, 8.0) @ np.diag([2.0, 2.0, 3.0])
    source_affine[:3, 3] = [-22.0, -23.0, -18.0]
    smooth = np.cumsum(np.cumsum(rng.random((24, 26, 14)), 0), 1).astype(np.float32)  # x, y, z
    source = nib.Nifti1Image(smooth, source_affine)
    shape_xyz = (40, 48, 32)
    expected = np.asarray(resample_from_to(source, (shape_xyz, target_affine), order=1,
                                           cval=0.0).dataobj)
    ours = onto_grid(smooth.transpose(2, 1, 0), source_affine, target_affine, shape_xyz[::-1])
    assert not is_exact_copy(source_affine, target_affine) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected.transpose(2, 1, 0), rtol=1e-4, atol=1e-3)
    assert (ours > 0).mean() > 0.3  # the scan covers much of the target: not a blank test


def test_the_finest_grid_is_the_target(tmp_path, small_case):
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    coarse = nib.load(str(images[0]))
    half = nib.Nifti1Image(np.asarray(coarse.dataobj)[::2, ::2, ::2],
                           coarse.affine @ np.diag([2.0, 2.0, 2.0, 1.0]), coarse.header)
    nib.save(half, str(tmp_path / "half_t1.nii.gz"))
    volumes = [read_volume(tmp_path / "half_t1.nii.gz"), read_volume(images[3])]
    on_one = on_one_grid(volumes)
    assert all(v.shape == volumes[1].shape for v in on_one)
    np.testing.assert_array_equal(on_one[1].data, volumes[1].data)  # the target is kept


def test_cli_refuses_grids_that_differ_and_resample_predicts_as_on_one_grid(
        tmp_path, small_case, tiny_model_folder, capsys):
    """A FLAIR stored LPS beside RAS scans of one shape and spacing: refused with the flag
    to use; with --resample, the same segmentation as with the RAS FLAIR (exact copy)."""
    write_case(small_case, tmp_path, "c")
    images, _ = case_files(tmp_path, "c")
    mixed = [*images[:3], _stored_lps(images[3], tmp_path / "c_lps_flair.nii.gz")]
    model = ["--model", str(tiny_model_folder), "--device", "cpu", "--precision", "float32"]
    assert main(["predict", *map(str, mixed), "-o", str(tmp_path / "x.nii.gz"), *model]) == 2
    error = capsys.readouterr().err.strip()
    assert "axis directions" in error and "--resample" in error and len(error.splitlines()) == 1
    assert main(["predict", *map(str, mixed), "-o", str(tmp_path / "mixed.nii.gz"), *model,
                 "--resample"]) == 0
    assert main(["predict", *map(str, images), "-o", str(tmp_path / "ras.nii.gz"), *model]) == 0
    mixed_seg = read_labels(tmp_path / "mixed.nii.gz")
    ras_seg = read_labels(tmp_path / "ras.nii.gz")
    np.testing.assert_allclose(mixed_seg.affine, ras_seg.affine)
    np.testing.assert_array_equal(mixed_seg.data, ras_seg.data)


def test_batch_resamples_a_case_only_when_asked(tmp_path, small_case):
    """A cohort case whose FLAIR is stored LPS fails with the reason; --resample runs it,
    and the review queue reads it as batch did."""
    from tests.conftest import make_model_folder

    from napari_medseg.cohort import run_batch
    from napari_medseg.cohort._review import load_review_case
    from napari_medseg.progress import run_to_end

    case = tmp_path / "cohort" / "c"
    write_case(small_case, case, "c")
    images, reference = case_files(case, "c")
    reference.unlink()
    _stored_lps(images[3], case / "c_flair_lps.nii.gz")
    images[3].unlink()
    model = str(make_model_folder(tmp_path / "m", patch=(16, 16, 16), spacing=(6.0, 6.0, 6.0)))
    refused = run_to_end(run_batch(tmp_path / "cohort", tmp_path / "a", model=model,
                                   scheduler="serial", samples=2))
    assert [f["case_id"] for f in refused.failed] == ["c"]
    assert "--resample" in refused.failed[0]["error"]
    done = run_to_end(run_batch(tmp_path / "cohort", tmp_path / "b", model=model,
                                scheduler="serial", samples=2, resample=True))
    assert list(done.computed) == ["c"]
    review = load_review_case(tmp_path / "b", "c")
    assert review.volume.shape == review.segmentation.data.shape == small_case.volume.shape


def test_a_mask_on_another_grid_is_refused_or_resampled_never_read_mirrored(
        tmp_path, small_case, capsys):
    """A reference stored LPS beside RAS scans has the case's shape, so it was taken as
    stored: mirrored in x and y against the images (an export for retraining paired
    them so). Now the grid decides: one line naming --resample, and with it the mask
    comes back on the case's grid exactly; topology's reference the same, onto the
    mask's grid."""
    write_case(small_case, tmp_path, "c")
    images, seg = case_files(tmp_path, "c")
    lps = _stored_lps(seg, tmp_path / "c_seg_lps.nii.gz")
    assert read_labels(lps).shape == read_labels(seg).shape  # the shape alone cannot tell
    assert not np.array_equal(read_labels(lps).data, read_labels(seg).data)
    export = ["export", *map(str, images), "--format", "nifti", "--case-id", "c"]
    assert main([*export, "--mask", str(lps), "--out", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "c_seg_lps.nii.gz: axis directions LPS" in error and "--resample" in error
    assert not (tmp_path / "refused").exists()
    assert main([*export, "--mask", str(lps), "--out", str(tmp_path / "lps"), "--resample"]) == 0
    assert main([*export, "--mask", str(seg), "--out", str(tmp_path / "ras")]) == 0
    written = [read_labels(tmp_path / kind / "c_seg.nii.gz") for kind in ("lps", "ras")]
    np.testing.assert_array_equal(written[0].data, written[1].data)
    np.testing.assert_allclose(written[0].affine, written[1].affine)
    capsys.readouterr()
    topology = ["topology", str(seg), "--brats", "--reference"]
    assert main([*topology, str(lps), "--json", str(tmp_path / "t.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--resample" in error
    assert main([*topology, str(lps), "--resample", "--json", str(tmp_path / "lps.json")]) == 0
    assert main([*topology, str(seg), "--json", str(tmp_path / "ras.json")]) == 0
    reports = [json.loads((tmp_path / f"{kind}.json").read_text()) for kind in ("lps", "ras")]
    assert reports[0]["targets"] == reports[1]["targets"]
    assert all("reference_betti" in entry for entry in reports[0]["targets"].values())
