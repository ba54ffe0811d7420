"""Atomic writes: write beside the target, then rename over it.

A reader (or a crash) never sees a half-written file: either the old file or
the complete new one exists at the target path.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from napari_medseg.errors import InputError

_COMPOUND_SUFFIXES = (".nii.gz", ".tar.gz")


def split_suffix(path: Path) -> tuple[str, str]:
    """Split ``name.nii.gz`` into ``('name', '.nii.gz')`` (compound-aware)."""
    name = path.name
    for suffix in _COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return path.stem, path.suffix


def check_writable(target: Path, overwrite: bool) -> None:
    """Refuse a target that exists (unless ``overwrite``) or whose folder is not writable."""
    if target.exists() and not overwrite:
        raise InputError(f"{target}: already exists. Pass overwrite=True (CLI: --overwrite) "
                         "to replace it, or choose another name")
    folder = target.parent
    if not folder.exists():
        raise InputError(f"{folder}: the output folder does not exist. Create it first")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: the output folder is not writable. Choose another folder")


@contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; on success move it over ``target``.

    Works for files and folders (zarr stores). The temporary path keeps the
    target's suffix so writers that dispatch on the extension still work. On
    an exception the temporary data is removed and ``target`` is untouched.

    Parameters
    ----------
    target : path-like
        Final location.
    overwrite : bool
        Allow replacing an existing ``target``.
    """
    target = Path(target)
    check_writable(target, overwrite)
    stem, suffix = split_suffix(target)
    tag = uuid.uuid4().hex[:8]
    temporary = target.with_name(f".{stem}.partial-{tag}{suffix}")
    try:
        yield temporary
        _replace(temporary, target)
    finally:
        _remove(temporary)


def _replace(source: Path, target: Path) -> None:
    if source.is_dir() and target.exists():
        backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, backup)
        os.replace(source, target)
        _remove(backup)
    else:
        os.replace(source, target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
