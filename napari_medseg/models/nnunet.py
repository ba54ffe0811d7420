"""nnU-Net v2 trained-model folders: recognise, describe and load them safely.

A trained-model folder (``Trainer__Plans__Configuration``) holds
``plans.json``, ``dataset.json`` and ``fold_*/checkpoint_final.pth`` (or
``checkpoint_best.pth``). Reading its description (`nnunet_spec`) needs only
JSON; loading it needs the optional ``nnunetv2`` package
(``pip install "napari-medseg[nnunet]"``).

Safety, as for our own folders:

- checkpoints are pickles: they are read with ``torch.load(weights_only=True)``
  and an explicit allow-list (`_nnunet_checkpoint.allowed_checkpoint_types`), never with
  ``weights_only=False``; a checkpoint holding any other type is refused with
  the type's name;
- the plans name the network class and its layer classes, which nnU-Net
  imports by name: only the U-Nets of ``dynamic_network_architectures`` and
  ``torch.nn`` layers are accepted, so a plans file cannot make us import or
  call anything else;
- every fold folder and checkpoint must lie inside the model folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_medseg.errors import InputError, describe
from napari_medseg.labels import LabelInfo
from napari_medseg.models.loading import LoadedModel
from napari_medseg.models.spec import (MAX_SPEC_BYTES, FoldSpec, InputSpec, ModelSpec,
                                      read_json_file)

PLANS_FILE, DATASET_FILE = "plans.json", "dataset.json"
CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")
INSTALL_HINT = 'install it with pip install -c constraints.txt "napari-medseg[nnunet]"'
ALLOWED_NETWORKS = frozenset(
    f"dynamic_network_architectures.architectures.unet.{name}"
    for name in ("PlainConvUNet", "ResidualEncoderUNet"))
_FOLD = re.compile(r"^fold_(\d+|all)$")
_PALETTE = ((0.90, 0.20, 0.20, 1.0), (0.25, 0.80, 0.30, 1.0), (1.00, 0.85, 0.10, 1.0),
            (0.20, 0.45, 0.95, 1.0), (0.80, 0.35, 0.85, 1.0), (0.10, 0.80, 0.80, 1.0))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(describe(path.parent, f"not an nnU-Net model folder (no {path.name})",
                                  "Choose the Trainer__Plans__Configuration folder that holds "
                                  "plans.json, dataset.json and fold_* folders"))
    data = read_json_file(path, 16 * MAX_SPEC_BYTES)  # plans of many configurations
    if not isinstance(data, dict):
        raise InputError(describe(path, "does not hold a JSON object"))
    return data


def fold_checkpoints(folder: str | Path) -> dict[str, Path]:
    """``{fold name: checkpoint}`` of the folds present (``checkpoint_final`` preferred)."""
    folder = Path(folder).resolve()
    found = {}
    for sub in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = _FOLD.match(sub.name)
        if not match or not sub.is_dir():
            continue
        for name in CHECKPOINTS:
            path = (sub / name).resolve()
            if path.is_file() and path.is_relative_to(folder):
                found[match.group(1)] = path
                break
    return dict(sorted(found.items(), key=lambda item: (not item[0].isdigit(), item[0].zfill(4))))


def configuration_name(folder: Path, plans: dict) -> str:
    """The configuration from the folder name (``Trainer__Plans__Configuration``).

    Parameters
    ----------
    folder : Path
        The trained-model folder.
    plans : dict
        Its plans (the configuration must be one of them).
    """
    parts = Path(folder).resolve().name.split("__")
    configurations = plans.get("configurations", {})
    if len(parts) == 3 and parts[2] in configurations:
        return parts[2]
    if "3d_fullres" in configurations:
        return "3d_fullres"
    raise InputError(describe(folder, "the folder name does not say which configuration it "
                              f"holds (plans have {', '.join(configurations) or 'none'})",
                              "Keep nnU-Net's folder name Trainer__Plans__Configuration"))


def _configuration(plans: dict, name: str) -> dict:
    """The configuration's dict with nnU-Net's ``inherits_from`` resolved."""
    configurations = plans["configurations"]
    merged: dict = {}
    while name:
        entry = configurations[name]
        merged = {**entry, **merged}
        name = entry.get("inherits_from")
    return merged


def _output_labels(descriptor: dict) -> tuple[tuple[LabelInfo, ...], dict[str, tuple[int, ...]]]:
    """Label values of the output map and, for region-based models, the regions.

    A region-based model writes ``regions_class_order[i]`` where region ``i``
    holds, later regions over earlier ones; each value is named by its region.
    """
    entries = [(name, value) for name, value in descriptor.get("labels", {}).items()
               if name != "background"]
    order = descriptor.get("regions_class_order")
    if not order:
        labels = tuple(LabelInfo(int(v), n, n, _PALETTE[i % len(_PALETTE)])
                       for i, (n, v) in enumerate(entries) if isinstance(v, int) and v > 0)
        return labels, {}
    sets = [set(v) if isinstance(v, list) else {v} for _, v in entries]
    labels = tuple(LabelInfo(int(value), name, f"region {name}", _PALETTE[i % len(_PALETTE)])
                   for i, ((name, _), value) in enumerate(zip(entries, order)))
    own = {int(value): sets[i] - set().union(*sets[i + 1:]) for i, value in enumerate(order)}
    regions = {name: tuple(v for v, members in own.items() if members <= sets[i])
               for i, (name, _) in enumerate(entries)}
    return labels, regions


def _normalisation(scheme: str, use_mask: bool) -> str:
    if scheme == "ZScoreNormalization":
        return "zscore_nonzero" if use_mask else "zscore"
    return "none" if scheme == "NoNormalization" else f"nnunet:{scheme}"


def nnunet_spec(folder: str | Path) -> ModelSpec:
    """A `ModelSpec` describing an nnU-Net folder (JSON only; no checkpoint is read).

    Inputs come from ``dataset.json``'s ``channel_names``, labels (or regions)
    from its ``labels``; patch size and spacing from the plans' configuration,
    in the case's ``(z, y, x)`` order. Folds name their checkpoints.

    Raises
    ------
    InputError
        When the folder lacks a JSON file, a configuration or any fold.
    """
    folder = Path(folder)
    return _describe(folder, _read_json(folder / PLANS_FILE), _read_json(folder / DATASET_FILE))


def _describe(folder: Path, plans: dict, descriptor: dict) -> ModelSpec:
    """`nnunet_spec` from the folder's parsed plans and dataset JSON."""
    try:
        configuration = configuration_name(folder, plans)
        config = _configuration(plans, configuration)
        back = plans.get("transpose_backward", [0, 1, 2])
        channels = {int(k): v for k, v in descriptor["channel_names"].items()}
        schemes = zip(config["normalization_schemes"], config["use_mask_for_norm"])
        inputs = tuple(InputSpec(str(channels[i]), _normalisation(scheme, bool(masked)))
                       for i, (scheme, masked) in enumerate(schemes))
        patch = tuple(int(config["patch_size"][i]) for i in back)
        spacing = tuple(float(config["spacing"][i]) for i in back)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise InputError(describe(folder / PLANS_FILE, f"is not an nnU-Net v2 plan this version "
                                  f"reads (missing or bad {error})")) from error
    if len(patch) != 3:
        raise InputError(describe(folder, "is a 2D nnU-Net configuration; only 3D ones run here",
                                  "Use the 3d_fullres model folder"))
    folds = fold_checkpoints(folder)
    if not folds:
        raise InputError(describe(folder, "has no fold_*/checkpoint_final.pth or "
                                  "checkpoint_best.pth", "Copy the folds of the trained model"))
    labels, regions = _output_labels(descriptor)
    root = folder.resolve()
    return ModelSpec(
        name=root.parent.name or root.name, version=root.name,
        architecture={"name": "nnunet", "args": {
            "configuration": configuration,
            "dropout": bool(config.get("architecture", {}).get("arch_kwargs", {}).get(
                "dropout_op"))}},
        inputs=inputs, labels=labels, regions=regions, patch_size=patch,  # type: ignore[arg-type]
        spacing=spacing, folds=tuple(FoldSpec(str(p.relative_to(root)), "")  # type: ignore
                                     for p in folds.values()),
        description=f"nnU-Net v2 model {root.parent.name} ({root.name})")


@dataclass(frozen=True, eq=False)
class NnunetModel(LoadedModel):
    """An nnU-Net model: its plans and each chosen fold's network and weights.

    `predict` runs nnU-Net's own pipeline on ``fold_networks``; ``networks``
    wraps them (`_nnunet_checkpoint.class_logits`) for the features that run
    networks themselves with the spec's normalisation and spacing.
    """

    fold_networks: tuple = ()
    plans: Any = None
    configuration: Any = None
    dataset: dict | None = None
    fold_names: tuple[str, ...] = ()
    mirror_axes: tuple[int, ...] | None = None


def _nnunetv2():
    try:
        import nnunetv2  # noqa: F401
    except ImportError as error:
        raise InputError(f"this is an nnU-Net model folder but nnU-Net is not installed: "
                         f"{INSTALL_HINT}") from error


def load_nnunet(folder: str | Path, folds: list[int] | None = None) -> NnunetModel:
    """Load an nnU-Net v2 trained-model folder safely (see the module docstring).

    Parameters
    ----------
    folder : path-like
        The ``Trainer__Plans__Configuration`` folder.
    folds : list of int, optional
        Positions in the folder's fold list (default: every fold present).

    Raises
    ------
    InputError
        For a missing file, fold or package, a refused network or checkpoint
        type, or weights that do not fit the plans' network.
    """
    from napari_medseg.models._nnunet_checkpoint import build_network, read_checkpoint

    folder = Path(folder)
    plans, dataset = _read_json(folder / PLANS_FILE), _read_json(folder / DATASET_FILE)
    spec = _describe(folder, plans, dataset)
    _nnunetv2()
    available = list(fold_checkpoints(folder).items())
    chosen = range(len(available)) if folds is None else folds
    for index in chosen:
        if not 0 <= index < len(available):
            raise InputError(f"{folder}: fold {index} does not exist (the model has folds "
                             f"{', '.join(name for name, _ in available)})")
    checkpoints = [read_checkpoint(available[i][1]) for i in chosen]
    parts = build_network(folder, plans, dataset, checkpoints, spec)
    return NnunetModel(spec=spec, folder=folder, networks=parts.pop("networks"),
                       fold_names=tuple(available[i][0] for i in chosen), **parts)


def class_probabilities(regions, order):
    """Each label value's probability from a region-based output (regions independent).

    nnU-Net paints ``order[i]`` where region ``i`` is on, later regions over
    earlier ones; so value ``order[i]`` has probability ``p_i * prod_{j>i}(1 - p_j)``
    and background ``prod_j (1 - p_j)``.

    Parameters
    ----------
    regions : ndarray or torch.Tensor
        Region probabilities, regions on the first axis.
    order : sequence of int
        ``regions_class_order`` from ``dataset.json``.

    Returns
    -------
    ndarray or torch.Tensor
        ``[1 + max(order), ...]``, of the input's kind.
    """
    values = [regions[0] * 0 for _ in range(1 + max(int(v) for v in order))]
    later_off = 1 - values[0]
    for index in range(len(order) - 1, -1, -1):
        values[int(order[index])] = values[int(order[index])] + regions[index] * later_off
        later_off = later_off * (1 - regions[index])
    values[0] = later_off
    if isinstance(regions, np.ndarray):
        return np.stack(values).astype(np.float32)
    import torch

    return torch.stack(values)
