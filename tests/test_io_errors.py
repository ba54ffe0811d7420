"""Bad input: one clear line naming the file and the problem, never a traceback."""
from __future__ import annotations

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.errors import InputError
from napari_medseg.io import read_labels, read_volume, write_labels
from tests.conftest import make_affine


def _nifti(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, make_affine("ras") if affine is None else affine), str(path))
    return path


def _truncated(tmp_path):
    good = _nifti(tmp_path / "good.nii.gz", np.ones((20, 20, 20), np.float32))
    raw = gzip.decompress(good.read_bytes())
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return bad


def _corrupt(tmp_path):
    bad = tmp_path / "corrupt.nii"
    bad.write_bytes(b"this is not a nifti header" * 20)
    return bad


def _two_d(tmp_path):
    return _nifti(tmp_path / "slice.nii.gz", np.ones((8, 8), np.float32))


def _five_d(tmp_path):
    return _nifti(tmp_path / "five.nii.gz", np.ones((4, 4, 4, 2, 3), np.float32))


def _nan(tmp_path):
    data = np.ones((6, 6, 6), np.float32)
    data[1, 2, 3] = np.nan
    data[0, 0, 0] = np.inf
    return _nifti(tmp_path / "nan.nii.gz", data)


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _not_dicom_folder(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here", encoding="utf-8")
    return folder


def _case_folder(tmp_path):
    folder = tmp_path / "case_001"
    folder.mkdir()
    for contrast in ("t1", "t2"):
        _nifti(folder / f"case_001_{contrast}.nii.gz", np.ones((6, 6, 6), np.float32))
    return folder


def _missing(tmp_path):
    return tmp_path / "does_not_exist.nii.gz"


CASES = {
    "truncated": (_truncated, "cannot be read as NIfTI"),
    "corrupt": (_corrupt, "cannot be read as NIfTI"),
    "2d": (_two_d, "2 dimensions"),
    "5d": (_five_d, "5 dimensions"),
    "nan": (_nan, "2 voxels are NaN or infinite"),
    "empty folder": (_empty_folder, "the folder is empty"),
    "non-DICOM folder": (_not_dicom_folder, "no DICOM files in this folder"),
    "a case's folder of NIfTI files": (
        _case_folder, "holds image files (case_001_t1.nii.gz, case_001_t2.nii.gz), not a DICOM "
        "series. Pass the files themselves"),
    "missing path": (_missing, "no such file or folder"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reader_raises_one_line_naming_file(tmp_path, name):
    make, expected = CASES[name]
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_volume(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


@pytest.mark.parametrize("name", list(CASES))
def test_cli_info_exits_nonzero_with_one_line(tmp_path, capsys, name):
    make, expected = CASES[name]
    path = make(tmp_path)
    assert main(["info", str(path), "--check"]) == 2  # --check reads every voxel
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0]
    assert "Traceback" not in captured.err


def test_contrasts_of_different_shapes_are_refused(tmp_path):
    a = _nifti(tmp_path / "a_t1.nii.gz", np.ones((6, 6, 6), np.float32))
    b = _nifti(tmp_path / "b_t2.nii.gz", np.ones((6, 6, 7), np.float32))
    with pytest.raises(InputError, match="does not match"):
        read_volume([a, b])


def test_contrasts_with_different_geometry_are_refused(tmp_path):
    a = _nifti(tmp_path / "a_t1.nii.gz", np.ones((6, 6, 6), np.float32), make_affine("ras"))
    b = _nifti(tmp_path / "b_t2.nii.gz", np.ones((6, 6, 6), np.float32), make_affine("lps"))
    with pytest.raises(InputError, match="one voxel grid"):
        read_volume([a, b])


def test_contrasts_whose_origins_differ_say_so(tmp_path):
    shifted = np.diag([1.0, 1.0, 1.0, 1.0])
    shifted[0, 3] = 7.0
    a = _nifti(tmp_path / "a_t1.nii.gz", np.ones((6, 6, 6), np.float32), np.eye(4))
    b = _nifti(tmp_path / "b_t2.nii.gz", np.ones((6, 6, 6), np.float32), shifted)
    with pytest.raises(InputError, match=r"origin \(7, 0, 0\) mm does not match .*"
                                         r"\(origin \(0, 0, 0\) mm\)"):
        read_volume([a, b])


def test_intensity_image_is_refused_as_a_mask(tmp_path, capsys):
    image = np.arange(10 * 10 * 10, dtype=np.int16).reshape(10, 10, 10)
    path = _nifti(tmp_path / "t1.nii.gz", image)
    with pytest.raises(InputError, match="1000 distinct values: it looks like an intensity"):
        read_labels(path)
    atlas = _nifti(tmp_path / "atlas.nii.gz", (image % 120 * 17).astype(np.int16))
    assert len(np.unique(read_labels(atlas).data)) == 120  # an atlas with sparse values is fine


def test_non_dicom_folder_prints_one_line_and_no_itk_warning(tmp_path, capfd):
    folder = _not_dicom_folder(tmp_path)
    (folder / "scan.dcm").write_bytes(b"not really DICOM")
    assert main(["info", str(folder)]) == 2
    captured = capfd.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "WARNING" not in captured.err


def test_label_file_with_fractions_is_refused(tmp_path):
    path = _nifti(tmp_path / "seg.nii.gz", np.full((4, 4, 4), 0.5, np.float32))
    with pytest.raises(InputError, match="fractional"):
        read_labels(path)


def test_writer_refuses_overwrite_and_missing_folder(tmp_path):
    volume = read_volume(_nifti(tmp_path / "img.nii.gz", np.ones((4, 5, 6), np.float32)))
    mask = np.zeros(volume.shape, np.uint8)
    target = write_labels(tmp_path / "mask.nii.gz", mask, volume)
    before = target.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        write_labels(target, mask + 1, volume)
    assert target.read_bytes() == before
    with pytest.raises(InputError, match="does not exist"):
        write_labels(tmp_path / "nowhere" / "mask.nii.gz", mask, volume)
    with pytest.raises(InputError, match="differs from the image shape"):
        write_labels(tmp_path / "other.nii.gz", np.zeros((2, 2, 2), np.uint8), volume)


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    from napari_medseg.io import _write

    volume = read_volume(_nifti(tmp_path / "img.nii.gz", np.ones((4, 5, 6), np.float32)))
    target = write_labels(tmp_path / "mask.nii.gz", np.zeros(volume.shape, np.uint8), volume)
    before = target.read_bytes()

    def crash_midway(path, data, affine):
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(_write, "write_nifti", crash_midway)
    with pytest.raises(OSError):
        write_labels(target, np.ones(volume.shape, np.uint8), volume, overwrite=True)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.nii.gz", "mask.nii.gz"]


def test_nifti_header_larger_than_its_file_is_refused(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    image.header.set_data_shape((1500, 1500, 1500))
    for name in ("huge.nii", "huge.nii.gz"):
        path = tmp_path / name
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(path))
        raw = path.read_bytes() if name.endswith(".nii") else None
        header = image.header.copy()
        if raw is not None:  # rewrite the header in place: 1500^3 declared, 256 B of data
            path.write_bytes(header.binaryblock + raw[len(header.binaryblock):])
        else:
            data = gzip.decompress(path.read_bytes())
            path.write_bytes(gzip.compress(header.binaryblock + data[len(header.binaryblock):]))
        with pytest.raises(InputError, match="header declares 1500 x 1500 x 1500"):
            read_volume([path])  # refused from the header, before any voxel is read


def test_info_reads_only_the_header(tmp_path, capsys):
    """An 8 GB volume (a sparse file) is described at once; reading it is refused."""
    import os

    import nibabel as nib

    from napari_medseg.cli import main
    from napari_medseg.io import read_volume

    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 2000))
    header.set_data_dtype(np.uint8)
    header.set_zooms((0.5, 0.5, 0.5))
    path = tmp_path / "huge.nii"
    image = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.diag([0.5, 0.5, 0.5, 1]), header)
    image.header.set_data_shape((2000, 2000, 2000))
    with open(path, "wb") as handle:
        image.header.write_to(handle)
    os.truncate(path, int(image.header.get_data_offset()) + 2000 ** 3)  # sparse: no disk used
    assert main(["info", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["shape_zyx"] == [2000, 2000, 2000] and record["spacing_zyx_mm"] == [0.5] * 3
    with pytest.raises(InputError, match="GiB but"):  # reading it needs 32 GB of float32
        read_volume(path)


def test_one_rule_for_label_masks_wherever_they_come_from():
    from napari_medseg.io import as_label_mask
    from napari_medseg.topology import check_topology

    whole = np.zeros((3, 4, 5), np.float64)
    whole[1, 1, 1] = 300.0
    assert as_label_mask(whole).dtype == np.uint16 and as_label_mask(whole)[1, 1, 1] == 300
    assert as_label_mask(np.ones((2, 2, 2), bool)).dtype == np.uint8
    for bad, problem in ((whole + 0.5, "fractional"), (-whole, "negative"),
                         (np.full((2, 2, 2), np.nan), "NaN"), (np.zeros((2, 2)), "3D")):
        with pytest.raises(InputError, match=problem):
            as_label_mask(bad, "the mask")
        with pytest.raises(InputError, match=problem):  # the topology check says the same
            check_topology(bad)
    with pytest.raises(InputError, match="differs from the image shape"):
        as_label_mask(whole, "m.nii.gz", shape=(3, 4, 6))


@pytest.mark.parametrize("bad, finite", [((np.inf, -np.inf), False), ((np.nan,), False),
                                         ((3e38, 3e38), True)])
def test_non_finite_voxels_counted_and_huge_finite_ones_kept(tmp_path, bad, finite):
    """The check sums the volume first: opposite infinities cancel to NaN there, and
    finite voxels whose float32 sum would overflow must not be refused."""
    data = np.ones((6, 6, 6), np.float32)
    data.flat[:len(bad)] = bad
    path = _nifti(tmp_path / "values.nii.gz", data)
    if finite:
        assert read_volume(path).data.shape == (1, 6, 6, 6)
    else:
        with pytest.raises(InputError, match=f"{len(bad)} voxels are NaN or infinite"):
            read_volume(path)


def test_files_read_side_by_side_cannot_promise_the_same_free_memory(tmp_path, monkeypatch):
    """One file fits in the free memory; while it is being read, a second that would also
    fit alone is refused, as it would be when read after the first."""
    import psutil

    from napari_medseg.io._nifti import memory_reserved

    first = nib.load(str(_nifti(tmp_path / "a_t1.nii.gz", np.ones((40, 40, 40), np.float32))))
    second_path = _nifti(tmp_path / "b_t2.nii.gz", np.ones((40, 40, 40), np.float32))
    needed = 40 ** 3 * 4
    free = type("Memory", (), {"available": int(needed * 2.5)})()  # two float32 reads fit
    monkeypatch.setattr(psutil, "virtual_memory", lambda: free)
    assert read_volume(second_path).shape == (40, 40, 40)  # alone: it fits
    with memory_reserved(tmp_path / "a_t1.nii.gz", first):  # the first one's read under way
        with pytest.raises(InputError, match="GiB are free"):
            read_volume(second_path)
    assert read_volume(second_path).shape == (40, 40, 40)  # the first read's share is back


def test_gzip_stream_longer_than_its_header_says_is_read_to_the_header_only(tmp_path):
    """A .nii.gz whose stream goes on after the voxels its header declares (here 64 MiB of
    zeros that inflate from a few KiB) reads as its header says, without inflating it all."""
    import tracemalloc

    data = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    path = _nifti(tmp_path / "padded_t1.nii.gz", data)
    raw = gzip.decompress(path.read_bytes()) + bytes(64 * 2**20)
    path.write_bytes(gzip.compress(raw, compresslevel=9))
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    volume = read_volume(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(volume.data[0], data.transpose(2, 1, 0))
    assert peak < 8 * 2**20


def test_uncompressed_nifti_short_of_its_voxels_is_refused_from_the_header(tmp_path):
    """The voxels start after the header (352 bytes and its extensions): a file 100 bytes
    short of them is refused before reading, naming what the header declares."""
    path = _nifti(tmp_path / "short.nii", np.ones((8, 8, 8), np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match="header declares 8 x 8 x 8 voxels"):
        read_volume(path)
