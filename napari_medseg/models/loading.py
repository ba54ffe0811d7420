"""Loading a model folder safely: checksums first, never unpickle code.

Weight files: ``.safetensors`` (preferred), ``.pt``/``.pth`` state dicts
read with ``torch.load(..., weights_only=True)`` (a pickle that would build
arbitrary objects or run code is refused), or ``.ts``/``.torchscript``
TorchScript archives for users' own networks. TorchScript is not a safe
format (a scripted module's code runs when it is loaded and when it
predicts), so it loads only when the caller says the folder is trusted
(``trust_code=True``; ``--trust-code`` on the CLI); otherwise it is refused.

Every weight file must lie inside the model folder (after resolving
symbolic links) and carry its SHA-256 in ``model.json``, checked before the
file is parsed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from napari_medseg.errors import InputError, describe
from napari_medseg.models.registry import resolve_model
from napari_medseg.models.spec import FoldSpec, ModelSpec, is_nnunet_folder, read_spec

TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".jit")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A spec and its fold networks (CPU, eval mode)."""

    spec: ModelSpec
    folder: Path
    networks: tuple

    @property
    def n_folds(self) -> int:
        """Number of fold networks."""
        return len(self.networks)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks.

    Parameters
    ----------
    path : Path
        The file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(folder: Path, fold: FoldSpec, trust_code: bool = False) -> Path:
    path = (folder / fold.file).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InputError(describe(folder / "model.json", f"fold file {fold.file!r} lies outside "
                                  "the model folder: refused", "Keep every weight file inside "
                                  "the model folder and name it relative to it"))
    if path.suffix in TORCHSCRIPT_SUFFIXES and not trust_code:
        raise InputError(describe(path, "TorchScript runs the code inside it when loaded: refused",
                                  "Convert the weights to safetensors, or, if you trust who made "
                                  "the model, pass --trust-code"))
    if not fold.sha256:
        raise InputError(describe(folder / "model.json", f"fold file {fold.file!r} has no sha256",
                                  f"Add \"sha256\": the output of `sha256sum {fold.file}`"))
    if not path.is_file():
        raise InputError(describe(path, "weight file named in model.json is missing",
                                  "Copy the complete model folder again"))
    if sha256_of(path) != fold.sha256.lower():
        raise InputError(describe(path, "checksum mismatch: the weight file is corrupted or was "
                                  "changed", "Copy the model folder again, or fix the sha256 in "
                                  "model.json if you changed the weights on purpose"))
    return path


def _state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise InputError(describe(path, f"not a valid safetensors file ({error})")) from error
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for pickles that carry code or objects
        raise InputError(describe(
            path, "refused: the file is not a plain tensor state dict (it may contain code)",
            "Save weights with safetensors or torch.save(model.state_dict())")) from error
    if not isinstance(state, dict):
        raise InputError(describe(path, "does not hold a state dict"))
    return state


def build_fold_network(spec: ModelSpec, path: Path):
    """Network for one weight file: TorchScript, or the spec's architecture + state dict.

    Parameters
    ----------
    spec : ModelSpec
        The model's description (architecture).
    path : Path
        The fold's weight file (safetensors, a state dict, or TorchScript).
    """
    import torch

    from napari_medseg.models.unet import build_network

    if path.suffix in TORCHSCRIPT_SUFFIXES:
        try:
            network = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise InputError(describe(path, f"not a TorchScript archive ({error})")) from error
        return network.eval()
    network = build_network(spec.architecture["name"], dict(spec.architecture.get("args", {})))
    state = {key: value.float() for key, value in _state_dict(path).items()}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(describe(path, "weights do not fit the architecture in model.json "
                                  f"({str(error).splitlines()[0]})")) from error
    return network.eval()


def load_model(name_or_folder: str | Path | None = None,
               folds: list[int] | None = None, trust_code: bool = False) -> LoadedModel:
    """Load a built-in model by name, or a model folder, verifying every checksum.

    Parameters
    ----------
    name_or_folder : str or Path, optional
        Built-in name (default ``brats_unet``), a folder with ``model.json``, or
        an nnU-Net v2 trained-model folder (`napari_medseg.models.nnunet`).
    folds : list of int, optional
        Load only these folds (default: all).
    trust_code : bool
        Allow TorchScript weight files, whose code runs when loaded.

    Raises
    ------
    InputError
        For a fold file outside the folder, without a checksum, with a wrong
        checksum, TorchScript without ``trust_code``, or weights that do not
        fit the architecture.
    """
    folder = resolve_model(name_or_folder)
    repeated = [index for position, index in enumerate(folds or []) if index in folds[:position]]
    if repeated:  # a fold taken twice would count double in the ensemble
        raise InputError(f"fold {repeated[0]} is given twice: give each fold once "
                         "(for example --folds 0 1)")
    if is_nnunet_folder(folder):
        from napari_medseg.models.nnunet import load_nnunet

        return load_nnunet(folder, folds)
    spec = read_spec(folder)
    chosen = range(len(spec.folds)) if folds is None else folds
    for index in chosen:
        if not 0 <= index < len(spec.folds):
            raise InputError(f"{folder}: fold {index} does not exist (the model has "
                             f"{len(spec.folds)} folds)")
    paths = [_verified(folder, spec.folds[i], trust_code) for i in chosen]  # all before any load
    networks = tuple(build_fold_network(spec, path) for path in paths)
    return LoadedModel(spec=spec, folder=folder, networks=networks)


def save_model(folder: str | Path, spec: ModelSpec, networks, half: bool = True) -> ModelSpec:
    """Write a model folder that `load_model` reads: one safetensors file per fold
    network and ``model.json`` with their checksums; the twin of `load_model`.

    Parameters
    ----------
    folder : str or Path
        Where to write (created if missing; files of the same names are replaced).
    spec : ModelSpec
        Everything but the folds, which are filled in here.
    networks : sequence of torch.nn.Module
        One network per fold, in fold order.
    half : bool
        Store the weights as float16 (half the size; `load_model` reads them as float32).

    Returns
    -------
    ModelSpec
        The spec written, with its folds.
    """
    from dataclasses import replace

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    folds = []
    for index, network in enumerate(networks):
        path = folder / f"fold{index}.safetensors"
        state = network.state_dict()
        save_file({k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
                   for k, v in state.items()}, str(path))
        folds.append(FoldSpec(path.name, sha256_of(path)))
    written = replace(spec, folds=tuple(folds))
    (folder / "model.json").write_text(written.to_json(), encoding="utf-8")
    return written
