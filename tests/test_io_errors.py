"""Bad input: one clear line naming the file and the problem, never a traceback."""
from __future__ import annotations

import gzip

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
    (folder / "readme.txt").write_text("no images here")
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
    "non-DICOM folder": (_not_dicom_folder, "no DICOM series found"),
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
    assert main(["info", str(path)]) == 2
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
