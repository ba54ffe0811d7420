"""Where models live: the built-in ones shipped with the package, or any folder."""
from __future__ import annotations

import json
from pathlib import Path

from napari_medseg.errors import InputError
from napari_medseg.models.spec import SPEC_FILE

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_MODEL = "brats_unet"


DEFAULT_CLICK_MODEL = "click_unet"


def builtin_models(task: str | None = "segmentation") -> dict[str, Path]:
    """``{name: folder}`` of the models shipped with napari-medseg.

    Parameters
    ----------
    task : str or None
        ``"segmentation"`` (automatic models, the default), ``"interactive"``
        (click models) or None for all.
    """
    if not BUILTIN_DIR.is_dir():
        return {}
    folders = {folder.name: folder for folder in sorted(BUILTIN_DIR.iterdir())
               if (folder / SPEC_FILE).is_file()}
    if task is None:
        return folders
    return {name: folder for name, folder in folders.items()
            if json.loads((folder / SPEC_FILE).read_text()).get("task", "segmentation") == task}


def resolve_model(name_or_folder: str | Path | None = None) -> Path:
    """The folder of a built-in model name, or a model folder path.

    Raises
    ------
    InputError
        Naming the models that exist when neither matches.
    """
    if name_or_folder is None:
        name_or_folder = DEFAULT_MODEL
    builtin = builtin_models(task=None)
    if str(name_or_folder) in builtin:
        return builtin[str(name_or_folder)]
    folder = Path(name_or_folder)
    if folder.is_dir():
        return folder
    raise InputError(f"{name_or_folder}: no built-in model of that name and no such folder. "
                     f"Built-in models: {', '.join(builtin) or 'none'}")
