"""I/O round trips checked against nibabel and SimpleITK reading our files."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_medseg.errors import InputError
from napari_medseg.io import each_path, read_labels, read_volume, write_labels
from tests.conftest import make_affine, rotation

SHAPE_XYZ = (7, 9, 5)


def _write_nifti(path, data_xyz, affine):
    image = nib.Nifti1Image(data_xyz, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))
    return path


def _sitk_geometry(image):
    return (np.array(image.GetOrigin()), np.array(image.GetSpacing()),
            np.array(image.GetDirection()))


def test_nifti_read_is_zyx_with_the_files_affine(tmp_path, affine):
    data = np.random.default_rng(0).normal(size=SHAPE_XYZ).astype(np.float32)
    path = _write_nifti(tmp_path / "img_t2.nii.gz", data, affine)
    volume = read_volume(path)
    assert volume.data.shape == (1, 5, 9, 7)
    np.testing.assert_array_equal(volume.data[0], data.transpose(2, 1, 0))
    np.testing.assert_allclose(volume.affine, affine, atol=1e-5)
    np.testing.assert_allclose(volume.spacing, (2.5, 1.1, 0.9), atol=1e-5)
    assert volume.channel_names == ("T2",)
    assert volume.orientation == "".join(nib.aff2axcodes(affine))


def test_nifti_mask_round_trip_matches_nibabel_and_simpleitk(tmp_path, affine):
    data = np.random.default_rng(1).normal(size=SHAPE_XYZ).astype(np.float32)
    source = _write_nifti(tmp_path / "img.nii.gz", data, affine)
    volume = read_volume(source)
    mask = (np.random.default_rng(2).random(volume.shape) * 4).astype(np.uint8)
    out = write_labels(tmp_path / "mask.nii.gz", mask, volume)

    written = nib.load(str(out))
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj).transpose(2, 1, 0), mask)

    itk_source, itk_mask = sitk.ReadImage(str(source)), sitk.ReadImage(str(out))
    for a, b in zip(_sitk_geometry(itk_source), _sitk_geometry(itk_mask)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(itk_mask), mask)
    assert read_labels(out).data.dtype == np.uint8


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_itk_source_round_trip_keeps_lps_geometry(tmp_path, suffix):
    array = np.random.default_rng(3).normal(size=(5, 9, 7)).astype(np.float32)  # z, y, x
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.9, 1.1, 2.5))
    image.SetOrigin((12.0, -30.5, 8.25))
    image.SetDirection(tuple(rotation(25.0, -10.0).ravel()))
    source = tmp_path / f"scan_flair{suffix}"
    sitk.WriteImage(image, str(source))

    volume = read_volume(source)
    np.testing.assert_array_equal(volume.data[0], array)
    assert volume.channel_names == ("FLAIR",)
    np.testing.assert_allclose(volume.spacing, (2.5, 1.1, 0.9), atol=1e-6)

    mask = (array > 0).astype(np.uint8)
    for out_name in ("mask.nii.gz", f"mask{suffix}"):
        out = write_labels(tmp_path / out_name, mask, volume)
        reread = sitk.ReadImage(str(out))
        for a, b in zip(_sitk_geometry(image), _sitk_geometry(reread)):
            np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(reread), mask)


def test_4d_nifti_becomes_channels(tmp_path):
    data = np.random.default_rng(4).normal(size=(*SHAPE_XYZ, 3)).astype(np.float32)
    volume = read_volume(_write_nifti(tmp_path / "multi.nii.gz", data, make_affine("ras")))
    assert volume.data.shape == (3, 5, 9, 7)
    np.testing.assert_array_equal(volume.data[2], data[..., 2].transpose(2, 1, 0))
    assert volume.channel_names == ("multi[0]", "multi[1]", "multi[2]")


def test_scaled_integer_gzip_reads_as_nibabel_reads_it(tmp_path):
    """The .nii.gz voxels are decompressed by ISA-L, not nibabel's stream: same values,
    scaling included, also for a file of two gzip members (some tools append)."""
    rng = np.random.default_rng(6)
    stored = rng.integers(-3000, 3000, size=SHAPE_XYZ).astype(np.int16)
    image = nib.Nifti1Image(stored, make_affine("lps"))
    image.header.set_slope_inter(0.25, 10.0)
    path = tmp_path / "scaled_t1.nii.gz"
    nib.save(image, str(path))
    expected = nib.load(str(path)).get_fdata(dtype=np.float32).transpose(2, 1, 0)
    assert not np.array_equal(expected, stored.transpose(2, 1, 0))  # the scaling applies
    np.testing.assert_array_equal(read_volume(path).data[0], expected)
    raw = gzip.decompress(path.read_bytes())
    two_members = tmp_path / "two_members_t1.nii.gz"
    two_members.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    np.testing.assert_array_equal(read_volume(two_members).data[0], expected)


def test_viewer_keeps_16_bit_scans_as_stored_and_the_model_gets_float32(tmp_path):
    """The reader keeps unscaled 8/16-bit voxels in their type (half the memory of
    float32, no conversion); a scaled file, and the model's volume, are float32."""
    from napari.layers import Image

    from napari_medseg._reader import layer_data
    from napari_medseg.layers import volume_from_layers

    rng = np.random.default_rng(8)
    stored = rng.integers(-1000, 3000, size=SHAPE_XYZ).astype(np.int16)
    plain = _write_nifti(tmp_path / "case_t1.nii.gz", stored, make_affine("ras"))
    scaled_image = nib.Nifti1Image(stored, make_affine("ras"))
    scaled_image.header.set_slope_inter(0.5, -3.0)
    nib.save(scaled_image, str(tmp_path / "case_t2.nii.gz"))
    unsigned = _write_nifti(tmp_path / "case_flair.nii.gz",
                            (stored.astype(np.int32) + 1000).astype(np.uint16), make_affine("ras"))
    layers, _ = layer_data([str(plain), str(tmp_path / "case_t2.nii.gz"), str(unsigned)])
    dtypes = [data.dtype for data, _, _ in layers]
    assert dtypes == [np.int16, np.float32, np.uint16]
    for (data, _, _), path in zip(layers, (plain, tmp_path / "case_t2.nii.gz", unsigned)):
        expected = nib.load(str(path)).get_fdata(dtype=np.float32).transpose(2, 1, 0)
        np.testing.assert_array_equal(data[...].astype(np.float32), expected)
    volume = volume_from_layers({kwargs["name"]: Image(data, **kwargs)
                                 for data, kwargs, _ in layers})
    assert volume.data.dtype == np.float32
    np.testing.assert_array_equal(volume.data, read_volume([plain, tmp_path / "case_t2.nii.gz",
                                                            unsigned]).data)
    both = read_volume([plain, unsigned], keep_integers=True)  # two integer types: float32
    assert both.data.dtype == np.float32
    np.testing.assert_array_equal(both.data, read_volume([plain, unsigned]).data)


def test_files_read_side_by_side_keep_their_order_and_first_error(tmp_path):
    rng = np.random.default_rng(7)
    names = ("t1", "t1ce", "t2", "flair")
    arrays = [rng.normal(size=SHAPE_XYZ).astype(np.float32) for _ in names]
    paths = [_write_nifti(tmp_path / f"case_{name}.nii.gz", array, make_affine("ras"))
             for name, array in zip(names, arrays)]
    assert [float(value) for value in each_path(lambda p: read_volume(p).data.sum(), paths)] \
        == pytest.approx([float(array.sum()) for array in arrays], rel=1e-6)
    for index in (1, 3):
        paths[index].write_bytes(paths[index].read_bytes()[:200])  # truncated
    with pytest.raises(InputError, match="case_t1ce"):
        read_volume(paths)


def test_several_files_become_channels_in_order(tmp_path):
    affine = make_affine("oblique")
    rng = np.random.default_rng(5)
    paths = [_write_nifti(tmp_path / f"case_{name}.nii.gz", rng.normal(size=SHAPE_XYZ)
                          .astype(np.float32), affine) for name in ("t1", "t1ce", "t2", "flair")]
    volume = read_volume(paths)
    assert volume.channel_names == ("T1", "T1ce", "T2", "FLAIR")
    assert volume.data.shape == (4, 5, 9, 7)
    assert volume.source_paths == tuple(str(p) for p in paths)


def test_zarr_labels_round_trip_with_metadata(tmp_path):
    volume_path = _write_nifti(tmp_path / "img.nii.gz",
                               np.zeros(SHAPE_XYZ, np.float32), make_affine("oblique"))
    volume = read_volume(volume_path)
    mask = np.zeros(volume.shape, np.uint8)
    mask[1:3, 2:5, 1:4] = 2
    out = write_labels(tmp_path / "mask.zarr", mask, volume, label_names={2: "ED"})
    labels = read_labels(out)
    np.testing.assert_array_equal(labels.data, mask)
    np.testing.assert_allclose(labels.affine, volume.affine)
    assert labels.label_names == {2: "ED"}


def test_zarr_labels_are_ome_zarr_that_ome_zarr_py_reads(tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    mask = np.zeros((6, 9, 7), np.uint8)
    mask[1:3, 2:5, 1:4] = 2
    mask[4, 4, 4] = 1
    affine = np.diag([0.9, 0.8, 2.0, 1.0])  # x, y, z spacing
    affine[:3, 3] = [10.0, -20.0, 5.0]
    out = write_labels(tmp_path / "mask.zarr", mask, affine, label_names={2: "ED"})
    node = list(Reader(parse_url(str(out)))())[0]
    assert {type(spec) for spec in node.specs} >= {Label, Multiscales}
    np.testing.assert_array_equal(np.asarray(node.data[0]), mask)
    assert [axis["name"] for axis in node.metadata["axes"]] == ["z", "y", "x"]
    scale, translation = node.metadata["coordinateTransformations"][0]
    assert scale["scale"] == pytest.approx([2.0, 0.8, 0.9])
    assert translation["translation"] == pytest.approx([5.0, -20.0, 10.0])
    assert node.metadata["properties"][2]["name"] == "ED" and set(node.metadata["color"]) == {1, 2}
    back = read_labels(out)  # the full affine is kept beside NGFF's scale and translation
    np.testing.assert_array_equal(back.data, mask)
    np.testing.assert_allclose(back.affine, affine)


def test_zarr_image_stays_lazy_until_computed(tmp_path):
    import zarr

    data = np.random.default_rng(6).normal(size=(2, 6, 8, 10)).astype(np.float32)
    group = zarr.open_group(str(tmp_path / "case.zarr"), mode="w")
    group.create_array("image", data=data, chunks=(1, 3, 4, 5))
    group.attrs.update({"affine": make_affine("lps").tolist(), "channel_names": ["T1", "T2"]})
    volume = read_volume(tmp_path / "case.zarr")
    assert volume.is_lazy
    assert volume.channel_names == ("T1", "T2")
    np.testing.assert_array_equal(np.asarray(volume.channel("T2")[2]), data[1, 2])
    np.testing.assert_array_equal(volume.compute().data, data)


def write_dicom_series(folder, array, spacing=(0.8, 0.8, 2.0), origin=(-50.0, -40.0, 10.0)):
    """Write ``array`` (z, y, x) as a DICOM series of int16 slices with SimpleITK."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1.12345"
    for index in range(array.shape[0]):
        image = sitk.GetImageFromArray(array[index:index + 1].astype(np.int16))
        image.SetSpacing(spacing)
        position = (origin[0], origin[1], origin[2] + index * spacing[2])
        image.SetOrigin(position)
        for tag, value in {
            "0008|0060": "MR", "0020|000e": series, "0020|000d": series + ".0",
            "0008|0018": f"{series}.{index + 1}", "0020|0013": str(index + 1),
            "0020|0032": "\\".join(map(str, position)),
            "0020|0037": "1\\0\\0\\0\\1\\0", "0018|0050": str(spacing[2]),
        }.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{index:03d}.dcm"))
        writer.Execute(image)
    return folder


def test_dicom_series_folder(tmp_path):
    array = (np.random.default_rng(7).random((6, 8, 10)) * 1000).astype(np.int16)
    folder = write_dicom_series(tmp_path / "series", array)
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.data[0], array.astype(np.float32))
    np.testing.assert_allclose(volume.spacing, (2.0, 0.8, 0.8), atol=1e-4)
    # LPS origin (-50, -40, 10) is RAS (50, 40, 10)
    np.testing.assert_allclose(volume.affine[:3, 3], (50.0, 40.0, 10.0), atol=1e-4)
    mask = (array > 500).astype(np.uint8)
    out = write_labels(tmp_path / "mask.nii.gz", mask, volume)
    reread = sitk.ReadImage(str(out))
    np.testing.assert_allclose(reread.GetOrigin(), (-50.0, -40.0, 10.0), atol=1e-4)
    np.testing.assert_allclose(reread.GetSpacing(), (0.8, 0.8, 2.0), atol=1e-4)


@pytest.mark.parametrize("name", ["case_t1.nii", "case_seg.nii"])
def test_uncompressed_nifti_is_read_into_memory_not_mapped(tmp_path, name):
    """An uncompressed file's voxels are copied in, not memory-mapped: a later change to
    the file (another program writing it in place) leaves the open layer as it was, and
    no mapping holds the file (Windows refuses to replace a mapped file)."""
    from napari_medseg._reader import layer_data

    stored = (np.arange(np.prod(SHAPE_XYZ)) % 3).astype(np.uint8).reshape(SHAPE_XYZ)
    path = _write_nifti(tmp_path / name, stored, make_affine("ras"))
    [(data, _, _)], _ = layer_data(str(path))
    before = np.array(data, copy=True)
    base = data
    while base is not None:
        assert not isinstance(base, np.memmap)
        base = getattr(base, "base", None)
    raw = bytearray(path.read_bytes())
    raw[-len(stored.ravel()):] = bytes(len(stored.ravel()))  # the voxels zeroed in place
    with open(path, "r+b") as handle:
        handle.write(raw)
    np.testing.assert_array_equal(np.asarray(data), before)


def test_gzip_writes_stream_without_an_uncompressed_copy(tmp_path):
    """`write_nifti` compresses as it writes: no copy of the volume's bytes is held, and
    two writes of the same data are the same bytes (a zero time stamp, as nibabel's)."""
    import tracemalloc

    from napari_medseg.io._nifti import write_nifti

    data = np.random.default_rng(9).normal(size=(128, 128, 128)).astype(np.float32)
    tracemalloc.start()
    write_nifti(tmp_path / "a.nii.gz", data, make_affine("ras"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < data.nbytes / 2
    write_nifti(tmp_path / "b.nii.gz", data, make_affine("ras"))
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()
    np.testing.assert_array_equal(
        nib.load(str(tmp_path / "a.nii.gz")).get_fdata(dtype=np.float32).transpose(2, 1, 0), data)


def test_json_text_is_standard_json():
    """NaN and infinities become null at any depth; what json reads back is the rest."""
    import json

    from napari_medseg.io import json_text

    payload = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -float("inf")}],
               "d": (np.float64("nan"), 2), "e": "NaN", "f": None, "g": True}
    text = json_text(payload)
    assert text.endswith("\n") and "NaN" not in text.replace('"NaN"', "")
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == {
        "a": None, "b": [1.5, None, {"c": None}], "d": [None, 2], "e": "NaN", "f": None,
        "g": True}
