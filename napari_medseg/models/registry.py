"""Where models live: built-in ones shipped with the package, the user's, or any folder.

The user's models folder (``$NAPARI_MEDSEG_MODELS_DIR``, else ``models`` in
platformdirs' user data folder) holds fine-tuned models; they are listed
beside the built-in ones, so they survive a restart of napari.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from napari_medseg.errors import InputError
from napari_medseg.models.spec import SPEC_FILE, is_model_folder, is_nnunet_folder

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_MODEL = "brats_unet"


DEFAULT_CLICK_MODEL = "click_unet"


def user_models_dir() -> Path:
    """The user's models folder (created on demand); see the module docstring."""
    from platformdirs import user_data_path

    folder = Path(os.environ.get("NAPARI_MEDSEG_MODELS_DIR",
                                 user_data_path("napari-medseg") / "models"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _task_of(folder: Path) -> str | None:
    if is_nnunet_folder(folder):
        return "segmentation"
    try:
        spec = json.loads((folder / SPEC_FILE).read_bytes())
        return str(spec.get("task", "segmentation"))
    except (OSError, ValueError, AttributeError):  # unreadable: load_model says why later
        return None


def _models_in(root: Path, task: str | None) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    folders = {folder.name: folder for folder in sorted(root.iterdir())
               if is_model_folder(folder)}
    return {name: folder for name, folder in folders.items()
            if task is None or _task_of(folder) == task}


def builtin_models(task: str | None = "segmentation") -> dict[str, Path]:
    """``{name: folder}`` of the models shipped with napari-medseg.

    Parameters
    ----------
    task : str or None
        ``"segmentation"`` (automatic models, the default), ``"interactive"``
        (click models) or None for all.
    """
    return _models_in(BUILTIN_DIR, task)


def user_models(task: str | None = "segmentation") -> dict[str, Path]:
    """``{name: folder}`` of the models in `user_models_dir` (fine-tuned ones).

    Parameters
    ----------
    task : str or None
        As for `builtin_models`.
    """
    return _models_in(user_models_dir(), task)


REMEMBERED_FILE = "remembered_folders.json"


def remembered_folders() -> list[Path]:
    """Model folders the user added (still model folders: ``model.json`` or nnU-Net's),
    oldest first."""
    path = user_models_dir() / REMEMBERED_FILE
    try:
        entries = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    folders = [Path(entry) for entry in entries if isinstance(entry, str)]
    return [folder for folder in folders if is_model_folder(folder)]


def remember_folder(folder: str | Path) -> None:
    """Add a model folder to the list the dock shows after a restart (atomic write)."""
    from napari_medseg.io import atomic_path

    folder = Path(folder).resolve()
    folders = [f for f in remembered_folders() if f != folder] + [folder]
    with atomic_path(user_models_dir() / REMEMBERED_FILE, overwrite=True) as temporary:
        temporary.write_text(json.dumps([str(f) for f in folders], indent=1), encoding="utf-8")


def resolve_model(name_or_folder: str | Path | None = None) -> Path:
    """The folder of a built-in model name, or a model folder path.

    Parameters
    ----------
    name_or_folder : str or Path, optional
        A built-in or user model's name, or a folder (default the built-in
        segmentation model).

    Raises
    ------
    InputError
        Naming the models that exist when neither matches.
    """
    if name_or_folder is None:
        name_or_folder = DEFAULT_MODEL
    builtin = builtin_models(task=None)
    named = {**user_models(task=None), **builtin}
    if str(name_or_folder) in named:
        return named[str(name_or_folder)]
    folder = Path(name_or_folder)
    if folder.is_dir():
        return folder
    raise InputError(f"{name_or_folder}: no built-in model of that name and no such folder. "
                     f"Built-in models: {', '.join(builtin) or 'none'}")
