"""Model specification: the ``model.json`` beside the weights of a model folder.

A model folder holds ``model.json`` and one weight file per fold
(safetensors, a ``weights_only`` state dict, or TorchScript). The spec says
what the widget needs to build its controls and what the engine needs to
run: inputs and their normalisation, labels, patch size, spacing, folds and
the SHA-256 of each weight file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from napari_medseg.errors import InputError, describe
from napari_medseg.labels import LabelInfo
from napari_medseg.models._schema import validate_spec

SPEC_FILE = "model.json"
MAX_SPEC_BYTES = 1 << 20


@dataclass(frozen=True)
class InputSpec:
    """One input contrast and how it is normalised."""

    name: str
    normalization: str = "zscore_nonzero"


@dataclass(frozen=True)
class FoldSpec:
    """One weight file (``.safetensors``, ``.pt`` state dict, or ``.ts`` TorchScript)."""

    file: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """Parsed ``model.json``; see the module docstring."""

    name: str
    version: str
    architecture: dict[str, Any]
    inputs: tuple[InputSpec, ...]
    labels: tuple[LabelInfo, ...]
    patch_size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    folds: tuple[FoldSpec, ...]
    description: str = ""
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: dict[str, Any] = field(default_factory=dict)
    expected_topology: dict[str, Any] = field(default_factory=dict)
    task: str = "segmentation"
    format_version: int = 1

    @property
    def input_names(self) -> tuple[str, ...]:
        """Contrast names in channel order."""
        return tuple(item.name for item in self.inputs)

    @property
    def n_classes(self) -> int:
        """Output classes including background."""
        return 1 + max(info.value for info in self.labels)

    def to_json(self) -> str:
        """Serialise (the inverse of `parse_spec`)."""
        data = asdict(self)
        data["labels"] = [{"value": i.value, "name": i.name, "description": i.description,
                           "color": list(i.color)} for i in self.labels]
        data["regions"] = {k: list(v) for k, v in self.regions.items()}
        return json.dumps(data, indent=2) + "\n"


def parse_spec(data: object, where: str = SPEC_FILE) -> ModelSpec:
    """Validate a spec dictionary against the schema and build a `ModelSpec`.

    Parameters
    ----------
    data : object
        The parsed ``model.json``.
    where : str
        The file, for messages.

    Raises
    ------
    InputError
        Naming the unknown, missing or out-of-bounds field (see `validate_spec`).
    """
    valid = validate_spec(data, where)
    return ModelSpec(
        name=valid.name, version=valid.version,
        architecture=valid.architecture.model_dump(exclude_unset=True),
        inputs=tuple(InputSpec(i.name, i.normalization) for i in valid.inputs),
        labels=tuple(LabelInfo(i.value, i.name, i.description, tuple(float(c) for c in i.color))
                     for i in valid.labels),
        patch_size=tuple(valid.patch_size),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in valid.spacing),  # type: ignore[arg-type]
        folds=tuple(FoldSpec(f.file, f.sha256) for f in valid.folds),
        description=valid.description,
        regions={name: tuple(values) for name, values in valid.regions.items()},
        training=dict(valid.training), metrics=dict(valid.metrics), parent=dict(valid.parent),
        expected_topology={name: entry.model_dump(exclude_unset=True)
                           for name, entry in valid.expected_topology.items()},
        task=valid.task, format_version=valid.format_version)


def is_nnunet_folder(folder: str | Path) -> bool:
    """True when ``folder`` has no ``model.json`` but nnU-Net's ``plans.json`` or
    ``dataset.json`` (reading it then says what else is missing)."""
    folder = Path(folder)
    return not (folder / SPEC_FILE).is_file() and any(
        (folder / name).is_file() for name in ("plans.json", "dataset.json"))


def is_model_folder(folder: str | Path) -> bool:
    """True for a folder with ``model.json`` or an nnU-Net v2 trained-model folder."""
    return (Path(folder) / SPEC_FILE).is_file() or is_nnunet_folder(folder)


def read_spec(folder: str | Path) -> ModelSpec:
    """Read and validate ``folder/model.json``, or describe an nnU-Net folder.

    Parameters
    ----------
    folder : str or Path
        A model folder (``model.json`` and weights) or an nnU-Net trained-model
        folder (see `napari_medseg.models.nnunet.nnunet_spec`).

    Raises
    ------
    InputError
        When it is neither, or its description is invalid (one line naming the field).
    """
    path = Path(folder) / SPEC_FILE
    if is_nnunet_folder(folder):
        from napari_medseg.models.nnunet import nnunet_spec

        return nnunet_spec(folder)
    if not path.is_file():
        raise InputError(describe(folder, f"not a model folder (no {SPEC_FILE}, no plans.json)",
                                  "Choose a folder that holds model.json and the weight files, "
                                  "or an nnU-Net trained-model folder (plans.json, dataset.json, "
                                  "fold_*)"))
    return parse_spec(read_json_file(path), str(path))


def read_json_file(path: Path, max_bytes: int = MAX_SPEC_BYTES) -> object:
    """Parse a model description file (``model.json``, nnU-Net's plans and dataset JSON).

    Parameters
    ----------
    path : Path
        The file.
    max_bytes : int
        Larger files are refused before reading.

    Raises
    ------
    InputError
        When it is larger than ``max_bytes`` or not valid UTF-8 JSON.
    """
    if path.stat().st_size > max_bytes:
        raise InputError(describe(path, f"is larger than {max_bytes // 1024} KiB: not a "
                                  "model description"))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(describe(path, f"is not valid JSON ({str(error).splitlines()[0]})"))
