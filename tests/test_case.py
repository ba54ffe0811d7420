"""Contrast recognition and the case consistency check."""
from __future__ import annotations

import pytest

from napari_medseg.case import ImageDescription, auto_assign, check_case
from napari_medseg.contrasts import guess_contrast, match_contrasts


@pytest.mark.parametrize("name, contrast", [
    ("BraTS-GLI-00000-000-t1n.nii.gz", "T1"), ("BraTS-GLI-00000-000-t1c.nii.gz", "T1ce"),
    ("BraTS-GLI-00000-000-t2w.nii.gz", "T2"), ("BraTS-GLI-00000-000-t2f.nii.gz", "FLAIR"),
    ("BraTS20_Training_001_t1ce.nii.gz", "T1ce"), ("patient_T2_FLAIR", "FLAIR"),
    ("T1", "T1"), ("flair", "FLAIR"), ("case_t2.mha", "T2"), ("brain", None),
    ("t1ce_copy", "T1ce"), ("seg", None), ("t1_t1ce_mix", "T1ce"),
    # BIDS: the contrast agent is an entity, the suffix stays T1w
    ("sub-01_T1w.nii.gz", "T1"), ("sub-01_ce-gadolinium_T1w.nii.gz", "T1ce"),
    ("sub-01_ses-1_ce-Gd_run-1_T1w", "T1ce"), ("sub-01_T2w", "T2"),
    ("sub-01_acq-3d_FLAIR.nii.gz", "FLAIR"), ("sub-01_ce-gd_T2w", "T2"),
])
def test_guess_contrast(name, contrast):
    assert guess_contrast(name) == contrast


def test_a_bids_subjects_files_make_one_case_with_its_post_contrast_t1(tmp_path):
    """BIDS names the contrast agent in an entity (``ce-``) and keeps the suffix ``T1w``:
    read as T1, the post-contrast scan took T1's place (or left T1ce missing), and a
    cohort folder split the subject into two incomplete cases."""
    from napari_medseg.cohort import discover_cases
    from napari_medseg.io._names import case_id_from_paths

    files = ["sub-07_ce-gadolinium_T1w.nii.gz", "sub-07_T1w.nii.gz", "sub-07_T2w.nii.gz",
             "sub-07_FLAIR.nii.gz"]
    assert match_contrasts(files) == {"T1": files[1], "T1ce": files[0], "T2": files[2],
                                      "FLAIR": files[3]}
    assert case_id_from_paths(files) == "sub-07"
    for name in files:  # a flat cohort folder (names only are read to find the cases)
        (tmp_path / name).touch()
    cases, skipped = discover_cases(tmp_path)
    assert skipped == [] and [case.case_id for case in cases] == ["sub-07"]
    assert [path.name for path in cases[0].images] == [files[1], files[0], files[2], files[3]]


def test_match_uses_each_name_once_in_order():
    assignment = match_contrasts(["a_t1", "b_t1", "c_flair"])
    assert assignment == {"T1": "a_t1", "T1ce": None, "T2": None, "FLAIR": "c_flair"}


def test_manual_choice_is_kept_and_moves_the_layer():
    names = ["x_t1", "x_t1ce", "x_t2", "x_flair"]
    assignment = auto_assign(names, keep={"T2": "x_flair"})
    assert assignment["T2"] == "x_flair" and assignment["FLAIR"] is None
    assert auto_assign(names, keep={"T1": ""})["T1"] is None
    assert auto_assign(names, keep={"T1": "gone"})["T1"] == "x_t1"


def _layer(name, shape=(10, 12, 14), spacing=(1.0, 1.0, 1.0)):
    return ImageDescription(name, shape, spacing)


def test_check_case_ok_and_each_problem():
    good = {c: _layer(c) for c in ("T1", "T1ce", "T2", "FLAIR")}
    assert check_case(good) == []
    missing = {**good, "T2": None}
    assert any("No layer for T2" in w for w in check_case(missing))
    shapes = {**good, "FLAIR": _layer("FLAIR", shape=(10, 12, 15))}
    assert any("disagree in shape" in w and "FLAIR 10\u2009\u00d7\u200912\u2009\u00d7\u200915" in w
               for w in check_case(shapes))
    spacing = {**good, "T1": _layer("T1", spacing=(3.0, 1.0, 1.0))}
    assert any("disagree in spacing" in w for w in check_case(spacing))
    twice = {**good, "T2": good["T1"]}
    assert any("used for T1 and T2" in w for w in check_case(twice))
    flat = {**good, "T1": _layer("T1", shape=(12, 14), spacing=(1.0, 1.0))}
    assert any("2 dimensions" in w for w in check_case(flat))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "int64", "uint64", "float32"])
def test_present_labels_equals_numpy_unique(dtype):
    import numpy as np

    from napari_medseg.labels import present_labels

    rng = np.random.default_rng(3)
    mask = rng.choice([0, 1, 3, 200], size=(20, 30, 40), p=[0.9, 0.05, 0.04, 0.01])
    mask = mask.astype(dtype)
    assert present_labels(mask) == [int(v) for v in np.unique(mask) if v] == [1, 3, 200]
    assert present_labels(np.zeros((4, 4), dtype)) == []
    large = np.zeros((155, 240, 240), dtype)  # counted a million voxels at a time
    large[0, 0, 1], large[-1, -1, -1], large[77, 120, 3] = 7, 9, 200  # first, last, middle
    assert present_labels(large) == [int(v) for v in np.unique(large) if v] == [7, 9, 200]
    if np.dtype(dtype).kind == "i":  # negative or huge values take the sorting path
        mask[0, 0, 0], mask[0, 0, 1] = -5, 2**20
        assert present_labels(mask) == [-5, 1, 3, 200, 2**20]


@pytest.mark.parametrize("name, stem, case", [
    ("BraTS-GLI-00000-000-t1c.nii.gz", "BraTS-GLI-00000-000-t1c", "BraTS-GLI-00000-000"),
    ("case_7_FLAIR.NRRD", "case_7_FLAIR", "case_7"), ("sub-01_T2w.mha", "sub-01_T2w", "sub-01"),
    ("mask.zarr", "mask", "mask"), ("T1ce", "T1ce", "T1ce"), ("case_0003.nii", "case_0003",
                                                           "case_0003"),
    ("sub-01_ce-gd_T1w.nii.gz", "sub-01_ce-gd_T1w", "sub-01")])
def test_one_place_strips_extensions_and_contrast_tokens(name, stem, case):
    from napari_medseg.contrasts import without_contrast
    from napari_medseg.io._names import image_stem

    assert image_stem(name) == stem and without_contrast(stem) == case


def test_a_volume_read_from_layers_now_is_built_later_as_the_layers_were_read(tmp_path):
    """The dock reads a case's layers on the GUI thread and builds the volume in its
    worker (float32, or the layers' own types): the builder holds the layers' arrays and
    geometry, the volume it builds is the one `volume_from_layers` builds, and a layer
    given new data afterwards (napari replaces arrays, it does not write into them) does
    not change it."""
    import numpy as np
    from napari.layers import Image

    from napari_medseg._reader import read_layers
    from napari_medseg.layers import source_paths, volume_builder, volume_from_layers
    from napari_medseg.sample import case_files, generate_case, write_case

    write_case(generate_case(5, spacing=4.0), tmp_path, "c5")
    images, _ = case_files(tmp_path, "c5")
    layers = {}
    for path, contrast in zip(images, ("T1", "T1ce", "T2", "FLAIR")):
        [(data, kwargs, _)] = read_layers(str(path))
        layers[contrast] = Image(data, **kwargs)
    build = volume_builder(layers)
    stored = volume_builder(layers, stored_types=True)
    expected = volume_from_layers(layers)
    first = np.asarray(layers["T1"].data).copy()
    layers["T1"].data = np.zeros_like(first)  # after the read: not in the built volume
    volume = build()
    assert volume.data.dtype == np.float32 and volume.channel_names == tuple(layers)
    np.testing.assert_array_equal(volume.data, expected.data)
    np.testing.assert_array_equal(volume.data[0], first)
    np.testing.assert_allclose(volume.affine, expected.affine)
    assert volume.source_paths == source_paths(layers.values()) == tuple(map(str, images))
    in_stored_types = stored()  # the files' 16-bit integers, the same values
    assert in_stored_types.data.dtype == np.int16 and first.dtype == np.int16
    np.testing.assert_array_equal(in_stored_types.data, volume.data)
    layers["T2"].data = np.asarray(layers["T2"].data, np.float64)  # wider: float32 as before
    assert volume_builder(layers, stored_types=True)().data.dtype == np.float32


def test_kept_probabilities_are_numpys_float16_bit_for_bit():
    """The probabilities a model's layer keeps for clicks are converted by torch (NumPy's
    cast is 60x slower on values below float16's normal range): the same bits for zeros,
    float16 subnormals, values that underflow, halfway cases and values near one."""
    import numpy as np

    from napari_medseg.layers import kept_probabilities

    rng = np.random.default_rng(0)
    values = np.concatenate([
        10.0 ** rng.uniform(-12, 0, 20_000),  # every scale a probability takes
        np.float16(2.0 ** -24) * rng.integers(0, 1024, 2_000),  # float16 subnormals
        (np.arange(2048) + 0.5) * 2.0 ** -11,  # halfway between float16 neighbours
        [0.0, 1.0, 2.0 ** -25, 2.0 ** -26, 1.0 - 2.0 ** -12]]).astype(np.float32)
    probabilities = values[: 4 * (len(values) // 4)].reshape(4, 1, -1, 1)
    kept = kept_probabilities(probabilities)
    assert kept.dtype == np.float16 and kept.shape == probabilities.shape
    np.testing.assert_array_equal(kept.view(np.uint16),
                                  probabilities.astype(np.float16).view(np.uint16))


def test_resampling_moves_the_masks_on_a_moved_contrasts_grid_and_keeps_their_look():
    """The T1 and a mask drawn on it lie on a grid stored LPS beside RAS contrasts: both
    move onto the others' grid (an exact copy, the mask in its type, its look and
    entries kept, the new affine); a mask already on that grid stays, a mask cropped
    to a box moves into it (background around); progress counts every layer moved."""
    import numpy as np

    from napari_medseg.case import Scan, resampled_layers
    from napari_medseg.layers import METADATA_KEY
    from napari_medseg.progress import run_to_end

    rng = np.random.default_rng(0)
    ras = np.diag([1.0, 1.0, 2.0, 1.0])
    lps = ras @ np.array([[-1, 0, 0, 9], [0, -1, 0, 7], [0, 0, 1, 0], [0, 0, 0, 1]], float)
    t1_ras = rng.random((4, 8, 10)).astype(np.float32)  # z, y, x
    mask_ras = (rng.random((4, 8, 10)) > 0.7).astype(np.uint8) * 2
    flip_xy = (slice(None), slice(None, None, -1), slice(None, None, -1))
    scans = {"T2": Scan(rng.random((4, 8, 10)), ras, "t2"),  # the first of equal grids
             "T1": Scan(t1_ras[flip_xy], lps, "t1 (LPS)")}
    look = {"opacity": 0.4, "metadata": {"label_names": {2: "ED"}, "source_paths": ["m"]}}
    box = (slice(None), slice(2, 6), slice(3, 8))  # z, y, x: starts at x 3, y 2
    masks = [Scan(mask_ras[flip_xy], lps, "drawn on t1", look=look),
             Scan(mask_ras, ras, "drawn on t2", look=look),
             Scan(mask_ras[box], ras @ _shift(3, 2, 0), "cropped", look=look)]
    steps = []
    result = run_to_end(resampled_layers(scans, masks), steps.append)
    assert list(result.images) == ["T1"] and list(result.masks) == ["drawn on t1", "cropped"]
    in_box = np.zeros_like(mask_ras)
    in_box[box] = mask_ras[box]
    np.testing.assert_array_equal(result.masks["cropped"][0], in_box)
    np.testing.assert_array_equal(result.images["T1"][0], t1_ras)
    data, kwargs, kind = result.masks["drawn on t1"]
    assert kind == "labels" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, mask_ras)
    assert kwargs["name"] == "drawn on t1 resampled" and kwargs["opacity"] == 0.4
    entries = kwargs["metadata"][METADATA_KEY]
    assert entries["label_names"] == {2: "ED"} and entries["resampled_from"] == "drawn on t1"
    np.testing.assert_allclose(entries["affine"], ras)
    assert [(s.done, s.total) for s in steps] == [(0, 3), (1, 3), (2, 3)]


def _shift(x: float, y: float, z: float):
    """A voxel-space translation, homogeneous 4x4."""
    import numpy as np

    shift = np.eye(4)
    shift[:3, 3] = (x, y, z)
    return shift
