"""Export a corrected case as NIfTI, zarr or into an nnU-Net v2 raw dataset."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_medseg.errors import InputError
from napari_medseg.io import as_label_mask
from napari_medseg.io._names import case_id_from_paths
from napari_medseg.export._nnunet import append_case
from napari_medseg.export._provenance import provenance_record
from napari_medseg.io import Volume, write_labels
from napari_medseg.io import atomic_files, atomic_path, make_folder

FORMATS = ("nifti", "zarr", "nnunet")


@dataclass(frozen=True)
class ExportResult:
    """Where an export went: the main output, every file written, the provenance."""

    output: Path
    files: tuple[Path, ...]
    provenance: dict


def check_case_id(case_id: str) -> str:
    """A case id that is a plain file name (letters, digits, ``-``, ``_``, ``.``).

    Raises
    ------
    InputError
        For ids with a path separator, ``..`` or other characters: such an id
        would write outside the export folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", case_id or "") or ".." in case_id:
        raise InputError(f"case id {case_id!r} is not a plain name: use letters, digits, '-', "
                         "'_' and '.', with no folder separators or '..'")
    return case_id


def default_case_id(volume: Volume) -> str:
    """A case id from the source file names (`case_id_from_paths`), else ``case``.

    Parameters
    ----------
    volume : Volume
        The case, with its ``source_paths``.
    """
    return case_id_from_paths(volume.source_paths)


def export_case(volume: Volume, mask: np.ndarray, fmt: str, out: str | Path,
                case_id: str | None = None, original: np.ndarray | None = None, model=None,
                history=(), label_names: dict[int, str] | None = None,
                dataset_name: str | None = None, dataset_id: int | None = None,
                overwrite: bool = False) -> ExportResult:
    """Export ``mask`` (the corrected labels of ``volume``) with its provenance.

    Parameters
    ----------
    volume : Volume
        The case (its affine is written with the mask; its sources checksummed).
    mask : ndarray
        Corrected labels ``[Z, Y, X]``.
    fmt : {"nifti", "zarr", "nnunet"}
        ``nifti``: ``{case}_seg.nii.gz`` + ``{case}_seg.provenance.json`` (+ the
        model's mask as ``{case}_model_seg.nii.gz``) in folder ``out``;
        ``zarr``: a ``{case}_seg.zarr`` OME-Zarr label image (array ``0``) with
        ``original_labels`` beside it and the provenance in its attributes;
        ``nnunet``: a case appended to the
        dataset ``out`` (or ``out/DatasetNNN_{dataset_name}``).
    out : path-like
        Output folder.
    case_id : str, optional
        Default: from the source file names.
    original, model, history, label_names :
        Provenance (see `provenance_record`).
    overwrite : bool
        Replace an existing export of the same case.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    mask = as_label_mask(mask, "the mask", volume.shape)
    case_id = check_case_id(case_id or default_case_id(volume))
    names = dict(label_names or {})
    out = Path(out)
    if fmt != "nnunet":
        make_folder(out)  # a folder the user names is made, as a file dialog would
    original_file = {"nifti": f"{case_id}_model_seg.nii.gz", "zarr": "original_labels",
                     "nnunet": f"{case_id}_model_seg.nii.gz"}[fmt] if original is not None \
        else None
    record = provenance_record(volume, mask, original, model, history, names, original_file)
    if fmt == "nifti":
        return _export_nifti(volume, mask, out, case_id, original, names, record, overwrite)
    if fmt == "zarr":
        return _export_zarr(volume, mask, out / f"{case_id}_seg.zarr", original, names, record,
                            overwrite)
    extra = {f"{case_id}.provenance.json": json.dumps(record, indent=1).encode()}
    if original is not None:
        extra[original_file] = np.asarray(original)
    folder = append_case(out, volume, mask, case_id, names, dataset_name, dataset_id, overwrite,
                         extra)
    files = (folder / "labelsTr" / f"{case_id}.nii.gz",
             *sorted((folder / "imagesTr").glob(f"{case_id}_[0-9][0-9][0-9][0-9].nii.gz")),
             *(folder / "provenance" / name for name in extra))
    return ExportResult(folder, files, record)


def _export_nifti(volume, mask, out, case_id, original, names, record, overwrite):
    """Mask, model mask and provenance as one set: the provenance, renamed last,
    names the other files' checksums (see `check_export_set`)."""
    from napari_medseg.models.loading import sha256_of

    target = out / f"{case_id}_seg.nii.gz"
    provenance_path = out / f"{case_id}_seg.provenance.json"
    masks = {target: mask}
    if original is not None:
        masks[out / record["original_mask"]] = np.asarray(original)
    with atomic_files([*masks, provenance_path], overwrite,
                      needed=sum(int(m.nbytes) for m in masks.values())) as temporaries:
        for temporary, labels in zip(temporaries, masks.values()):
            write_labels(temporary, labels, volume, label_names=names, overwrite=True)
        record = {**record, "files": {path.name: sha256_of(temporary)
                                      for path, temporary in zip(masks, temporaries)}}
        temporaries[-1].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return ExportResult(target, (*masks, provenance_path), record)


def check_export_set(provenance_path: str | Path) -> bool:
    """True when every file a NIfTI export's provenance names has the checksum it records
    (after completing a set commit that a killed process left half done)."""
    from napari_medseg.io import finish_interrupted
    from napari_medseg.models.loading import sha256_of

    provenance_path = Path(provenance_path)
    finish_interrupted(provenance_path.parent)
    record = json.loads(provenance_path.read_bytes())
    return all((provenance_path.parent / name).is_file() and
               sha256_of(provenance_path.parent / name) == checksum
               for name, checksum in record.get("files", {}).items())


def _export_zarr(volume, mask, target, original, names, record, overwrite):
    """An OME-Zarr label image (see ``io._zarr``) with the model's mask beside it
    (``original_labels``, same chunking) and the provenance record."""
    from napari_medseg.io._zarr import add_ngff_array, write_zarr_labels

    with atomic_path(target, overwrite=overwrite) as temporary:
        write_zarr_labels(temporary, np.asarray(mask), volume.affine,
                          {"label_names": {str(k): v for k, v in names.items()},
                           "provenance": record})
        if original is not None:
            import zarr

            add_ngff_array(zarr.open_group(str(temporary), mode="r+"), "original_labels",
                           np.asarray(original))
    return ExportResult(target, (target,), record)
