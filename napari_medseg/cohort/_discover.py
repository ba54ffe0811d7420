"""Finding the cases of a cohort folder, and saying which were skipped and why.

Layouts: one sub-folder per case holding its contrast files (named so that
the contrast can be told: ``*_t1.nii.gz``, ``*-t1c.nii.gz``, ``*_flair.nii.gz``);
or nnU-Net style files ``{case}_{0000..0003}.nii.gz`` in one folder (channel
order T1, T1ce, T2, FLAIR); or a flat folder of ``{case}_{t1,t1ce,t2,flair}``
files, as ``napari-medseg sample`` writes; or a BIDS dataset, whose subject
folders hold their scans in ``anat/`` (``sub-01/anat/sub-01_T1w.nii.gz``), one
case per session when it has ``ses-*`` folders (case ``sub-01_ses-02``).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from napari_medseg.contrasts import BRATS_CONTRASTS, guess_contrast, without_contrast
from napari_medseg.errors import InputError
from napari_medseg.io._names import IMAGE_SUFFIXES, image_stem

_NNUNET = re.compile(r"^(.+)_(\d{4})$")  # nnU-Net: {case}_{channel:04d}.{ext}
#: a BIDS dataset's folders that hold no subject (skipped without a word when
#: the folder has BIDS's dataset_description.json)
_BIDS_NOT_SUBJECTS = frozenset({"derivatives", "sourcedata", "code", "stimuli", "phenotype"})
#: files that are not scans: labels, masks, BIDS's defacing masks and segmentations
_NOT_A_SCAN = re.compile(r"(_seg|_label|_mask|_dseg|_probseg|_defacemask)\b")


@dataclass(frozen=True)
class CaseInput:
    """One case to process: its id and contrast files in model order."""

    case_id: str
    images: tuple[Path, ...]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) and \
        not _NOT_A_SCAN.search(path.name.lower())


def _sub_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _case_folders(folder: Path) -> list[tuple[str, Path]]:
    """``(case id, folder)`` for each case folder in ``folder``: its sub-folders, a BIDS
    subject's sessions instead of the subject when it has ``ses-*`` folders."""
    is_bids = (folder / "dataset_description.json").is_file()
    found: list[tuple[str, Path]] = []
    for sub in _sub_folders(folder):
        if is_bids and sub.name in _BIDS_NOT_SUBJECTS:
            continue
        sessions = [s for s in _sub_folders(sub) if s.name.startswith("ses-")]
        if sub.name.startswith("sub-") and sessions:
            found += [(f"{sub.name}_{session.name}", session) for session in sessions]
        else:
            found.append((sub.name, sub))
    return found


def _scans_of_case(folder: Path) -> list[Path]:
    """The scans in a case folder, and in its ``anat/`` folder (BIDS's place for them)."""
    places = [folder, folder / "anat"] if (folder / "anat").is_dir() else [folder]
    return [p for place in places for p in place.iterdir() if _is_image(p)]


def _by_contrast(files: list[Path]) -> tuple[tuple[Path, ...] | None, str]:
    found: dict[str, Path] = {}
    for path in sorted(files):
        contrast = guess_contrast(path.name)
        if contrast in BRATS_CONTRASTS and contrast not in found:
            found[contrast] = path
    missing = [c for c in BRATS_CONTRASTS if c not in found]
    if missing:
        return None, f"missing contrast(s) {', '.join(missing)}"
    return tuple(found[c] for c in BRATS_CONTRASTS), ""


def _case_stem(path: Path) -> str:
    return without_contrast(image_stem(path.name))


def discover_cases(folder: str | Path) -> tuple[list[CaseInput], list[tuple[str, str]]]:
    """Cases found in ``folder`` and ``(name, reason)`` for everything skipped.

    Parameters
    ----------
    folder : str or Path
        One sub-folder per case (a BIDS dataset: one per subject or session), or
        one set of contrast files per case.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder. Give the folder that holds the cases")
    cases: list[CaseInput] = []
    skipped: list[tuple[str, str]] = []
    for case_id, case_folder in _case_folders(folder):
        images, reason = _by_contrast(_scans_of_case(case_folder))
        if images is None:
            skipped.append((case_id, reason))
        else:
            cases.append(CaseInput(case_id, images))
    flat = [p for p in folder.iterdir() if _is_image(p)]
    nnunet: dict[str, dict[int, Path]] = defaultdict(dict)
    named: dict[str, list[Path]] = defaultdict(list)
    for path in flat:
        match = _NNUNET.match(image_stem(path))
        if match:
            nnunet[match.group(1)][int(match.group(2))] = path
        else:
            named[_case_stem(path)].append(path)
    for case_id, channels in sorted(nnunet.items()):
        if sorted(channels) != list(range(len(BRATS_CONTRASTS))):
            skipped.append((case_id, f"channels {sorted(channels)}; expected 0000..0003"))
        else:
            cases.append(CaseInput(case_id, tuple(channels[i] for i in sorted(channels))))
    for case_id, files in sorted(named.items()):
        images, reason = _by_contrast(files)
        if images is None:
            skipped.append((case_id, reason))
        else:
            cases.append(CaseInput(case_id, images))
    return sorted(cases, key=lambda c: c.case_id), skipped
