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

SPEC_FILE = "model.json"
NORMALISATIONS = ("zscore_nonzero", "zscore", "none")
_FIELDS = {"format_version", "name", "version", "description", "architecture", "inputs",
           "labels", "regions", "patch_size", "spacing", "folds", "training", "metrics",
           "parent", "expected_topology", "task"}
TASKS = ("segmentation", "interactive")
_REQUIRED = {"name", "version", "architecture", "inputs", "labels", "patch_size", "spacing",
             "folds"}


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


def _labels(items: list, where: str) -> tuple[LabelInfo, ...]:
    labels = []
    for item in items:
        try:
            labels.append(LabelInfo(int(item["value"]), str(item["name"]),
                                    str(item.get("description", "")),
                                    tuple(float(c) for c in item.get("color", (1, 1, 1, 1)))))
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(describe(where, f"label entry {item!r} is invalid ({error})",
                                      "Each label needs an integer 'value' and a 'name'"))
    if not labels or len({i.value for i in labels}) != len(labels) or min(
            i.value for i in labels) < 1:
        raise InputError(describe(where, "labels must be non-empty with distinct values >= 1"))
    return tuple(labels)


def parse_spec(data: dict, where: str = SPEC_FILE) -> ModelSpec:
    """Validate a spec dictionary and build a `ModelSpec`.

    Raises
    ------
    InputError
        Naming the unknown or missing field, or the bad value.
    """
    unknown = set(data) - _FIELDS
    if unknown:
        raise InputError(describe(where, f"unknown field(s) {sorted(unknown)}",
                                  f"Known fields: {', '.join(sorted(_FIELDS))}"))
    missing = _REQUIRED - set(data)
    if missing:
        raise InputError(describe(where, f"missing field(s) {sorted(missing)}"))
    inputs = tuple(InputSpec(str(i["name"]), str(i.get("normalization", "zscore_nonzero")))
                   for i in data["inputs"])
    for item in inputs:
        if item.normalization not in NORMALISATIONS:
            raise InputError(describe(where, f"input {item.name}: unknown normalization "
                                      f"{item.normalization!r}", f"Use one of {NORMALISATIONS}"))
    architecture = dict(data["architecture"])
    if "name" not in architecture:
        raise InputError(describe(where, "architecture needs a 'name'"))
    task = str(data.get("task", "segmentation"))
    if task not in TASKS:
        raise InputError(describe(where, f"unknown task {task!r}", f"Use one of {TASKS}"))
    folds = tuple(FoldSpec(str(f["file"]), str(f.get("sha256", ""))) for f in data["folds"])
    if not folds:
        raise InputError(describe(where, "no folds: a model needs at least one weight file"))
    return ModelSpec(
        name=str(data["name"]), version=str(data["version"]), architecture=architecture,
        inputs=inputs, labels=_labels(data["labels"], where),
        patch_size=tuple(int(n) for n in data["patch_size"]),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in data["spacing"]),  # type: ignore[arg-type]
        folds=folds, description=str(data.get("description", "")),
        regions={k: tuple(int(v) for v in vs) for k, vs in data.get("regions", {}).items()},
        training=dict(data.get("training", {})), metrics=dict(data.get("metrics", {})),
        parent=dict(data.get("parent", {})),
        expected_topology=dict(data.get("expected_topology", {})), task=task,
        format_version=int(data.get("format_version", 1)))


def read_spec(folder: str | Path) -> ModelSpec:
    """Read and validate ``folder/model.json``."""
    path = Path(folder) / SPEC_FILE
    if not path.exists():
        raise InputError(describe(folder, f"not a model folder (no {SPEC_FILE})",
                                  "Choose a folder that holds model.json and the weight files"))
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(describe(path, f"is not valid JSON (line {error.lineno}: {error.msg})"))
    return parse_spec(data, str(path))
