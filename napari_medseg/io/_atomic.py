"""Atomic writes: write beside the target, then rename over it.

A reader (or a crash) never sees a half-written file: either the old file or
the complete new one exists at the target path.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from napari_medseg.errors import InputError, describe

_COMPOUND_SUFFIXES = (".nii.gz", ".tar.gz")


def split_suffix(path: Path) -> tuple[str, str]:
    """Split ``name.nii.gz`` into ``('name', '.nii.gz')`` (compound-aware)."""
    name = path.name
    for suffix in _COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return path.stem, path.suffix


def check_writable(target: Path, overwrite: bool) -> None:
    """Refuse a target that exists (unless ``overwrite``) or whose folder is not writable.

    Parameters
    ----------
    target : Path
        The file or folder about to be written.
    overwrite : bool
        An existing target may be replaced.

    Raises
    ------
    InputError
        Naming the target and what to do.
    """
    if target.exists() and not overwrite:
        raise InputError(f"{target}: already exists. Pass overwrite=True (CLI: --overwrite) "
                         "to replace it, or choose another name")
    folder = target.parent
    if not folder.exists():
        raise InputError(f"{folder}: the output folder does not exist. Create it first")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: the output folder is not writable. Choose another folder")


def make_folder(folder: Path) -> Path:
    """Create an output ``folder`` (and its parents); one clear line when it cannot be.

    Parameters
    ----------
    folder : Path
        The folder; an existing one is fine.

    Raises
    ------
    InputError
        When it cannot be created (permissions, a file in the way).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the output folder ({error.strerror}). "
                         "Choose another folder") from None
    return folder


def _partial_name(target: Path) -> Path:
    stem, suffix = split_suffix(target)
    return target.with_name(f".{stem}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def clean_leftovers(target: Path) -> None:
    """Remove partial files and backups of ``target`` left by runs that died (kill -9).

    A partial file names its writer's process id; one whose process is still
    alive is left alone. Nested partials (a writer writing into another's
    temporary) go too.
    """
    import psutil

    stem, _ = split_suffix(target)
    for path in target.parent.glob(f".*{stem}.partial-*"):
        pid = path.name.split(".partial-")[1].split("-")[0]
        if not pid.isdigit() or not psutil.pid_exists(int(pid)):
            _remove(path)
    for path in target.parent.glob(f".{target.name}.old-*"):
        _remove(path)


def final_name(path: Path) -> Path:
    """The target a (possibly nested) temporary path will become."""
    if not (path.name.startswith(".") and ".partial-" in path.name):
        return path
    stem, suffix = split_suffix(path)
    return path.with_name(stem.lstrip(".").split(".partial-")[0] + suffix)


def _disk_full(target: Path, needed: int | None) -> InputError:
    free = shutil.disk_usage(target.parent).free / 2**20
    wanted = f"about {needed / 2**20:.1f} MiB needed, " if needed else ""
    return InputError(describe(final_name(target), f"the disk is full ({wanted}{free:.1f} MiB "
                               "free); nothing was changed", "Free space on that disk or "
                               "choose another folder"))


@contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False,
                needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary sibling path; on success move it over ``target``.

    Works for files and folders (zarr stores). The temporary path keeps the
    target's suffix so writers that dispatch on the extension still work. On
    an exception the temporary data is removed and ``target`` is untouched;
    a full disk becomes one `InputError` line. Leftovers of earlier runs that
    died are removed first.

    Parameters
    ----------
    target : path-like
        Final location.
    overwrite : bool
        Allow replacing an existing ``target``.
    needed : int, optional
        Bytes the write needs (for the disk-full message).
    """
    target = Path(target)
    with atomic_files([target], overwrite, needed) as (temporary,):
        yield temporary


@contextmanager
def atomic_files(targets: Sequence[str | os.PathLike], overwrite: bool = False,
                 needed: int | None = None) -> Iterator[list[Path]]:
    """Temporary siblings for a set of files, renamed into place together at the end.

    Every temporary is written and flushed to disk before the first rename.
    With several targets a journal naming the renames is committed first
    (`_commit`), so a process killed between two renames leaves a set that
    `finish_interrupted` completes: the next write into the folder does. The
    last target can be the set's record (for example provenance naming the
    other files' checksums).

    Parameters
    ----------
    targets : sequence of path-like
        Final locations, the commit record last.
    overwrite : bool
        Allow replacing existing targets.
    needed : int, optional
        Bytes the set needs (for the disk-full message).
    """
    paths = [Path(t) for t in targets]
    for folder in dict.fromkeys(path.parent for path in paths):
        finish_interrupted(folder)
    for path in paths:
        check_writable(path, overwrite)
        clean_leftovers(path)
    temporaries = [_partial_name(path) for path in paths]
    try:
        yield temporaries
        for temporary in temporaries:
            _flush(temporary)
        _commit(list(zip(temporaries, paths)))
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise _disk_full(paths[0], needed) from None
        raise
    finally:
        for temporary in temporaries:
            _remove(temporary)


_JOURNAL = ".commit-{}.json"  # {} = writer's pid and a tag


def _commit(moves: list[tuple[Path, Path]]) -> None:
    """Rename a set into place. With several files, a journal written first lets
    `finish_interrupted` complete the renames if the process dies between them."""
    if len(moves) == 1:
        _replace(*moves[0])
        return
    journal = moves[-1][1].parent / _JOURNAL.format(f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temporary = journal.with_name(f"{journal.name}.partial")
    temporary.write_text(json.dumps([[str(a), str(b)] for a, b in moves]), encoding="utf-8")
    _flush(temporary)
    os.replace(temporary, journal)  # from here on the set is committed
    for source, target in moves:
        _replace(source, target)
    journal.unlink()


def finish_interrupted(folder: Path) -> None:
    """Complete set commits that a dead process left half done (see `atomic_files`).

    Parameters
    ----------
    folder : Path
        Where the journals of `atomic_files` lie; a journal whose writer is
        still alive is left to it.
    """
    import psutil

    for journal in Path(folder).glob(_JOURNAL.format("*") + "*"):
        pid = journal.name.split("-")[1]
        if pid.isdigit() and psutil.pid_exists(int(pid)):
            continue  # its writer is alive and finishing it
        if journal.name.endswith(".partial"):  # died before the set was committed
            journal.unlink(missing_ok=True)
            continue
        try:
            moves = json.loads(journal.read_bytes())
        except (OSError, ValueError):
            continue
        for source, target in moves:
            if Path(source).exists():
                _replace(Path(source), Path(target))
        journal.unlink(missing_ok=True)


def _flush(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


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
    elif path.exists() or path.is_symlink():
        path.unlink()
