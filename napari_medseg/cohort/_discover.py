"""Finding the cases of a cohort folder, and saying which were skipped and why.

Layouts: one sub-folder per case holding its contrast files (named so that
the contrast can be told: ``*_t1.nii.gz``, ``*-t1c.nii.gz``, ``*_flair.nii.gz``);
or nnU-Net style files ``{case}_{0000..0003}.nii.gz`` in one folder (channel
order T1, T1ce, T2, FLAIR); or a flat folder of ``{case}_{t1,t1ce,t2,flair}``
files, as ``napari-medseg sample`` writes.
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


@dataclass(frozen=True)
class CaseInput:
    """One case to process: its id and contrast files in model order."""

    case_id: str
    images: tuple[Path, ...]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) and \
        not re.search(r"(_seg|_label|_mask)\b", path.name.lower())


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
        One sub-folder per case, or one set of contrast files per case.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder. Give the folder that holds the cases")
    cases: list[CaseInput] = []
    skipped: list[tuple[str, str]] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images, reason = _by_contrast([p for p in sub.iterdir() if _is_image(p)])
        if images is None:
            skipped.append((sub.name, reason))
        else:
            cases.append(CaseInput(sub.name, images))
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
