"""Reading nnU-Net checkpoints without unpickling code, and building their network.

See `napari_medseg.models.nnunet` for the rules. Needs ``nnunetv2``.
"""
from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path

from napari_medseg.errors import InputError, describe


def allowed_checkpoint_types() -> list:
    """The non-tensor types an nnU-Net checkpoint may hold besides builtins.

    nnU-Net's trainer logs NumPy floats (``numpy.float64``) in the checkpoint's
    ``logging`` and plans saved from NumPy values (sizes, strings) in its
    ``init_args``; a NumPy scalar is rebuilt from its dtype and bytes, so these
    are the NumPy scalar reconstructor, ``numpy.dtype`` and the number, bool
    and string dtype classes. ``torch.device`` and tensors are allowed by ``weights_only`` itself.
    """
    import numpy as np

    try:  # NumPy 2; checkpoints written under NumPy 1 name it numpy.core.multiarray.scalar
        from numpy._core.multiarray import scalar
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import scalar

    dtypes = [type(np.dtype(code)) for code in "?bhilqBHILQefdU"]  # numbers, bool, str
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_checkpoint(path: Path) -> dict:
    """``torch.load(weights_only=True)`` with `allowed_checkpoint_types`, or a refusal."""
    import torch

    try:
        with torch.serialization.safe_globals(allowed_checkpoint_types()):
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"(?:GLOBAL|got <class) '?([\w.]+)", str(error))
        refused = found.group(1) if found else "an object type"
        raise InputError(describe(path, f"refused: the checkpoint holds {refused}, "
                                  "which is not an allowed type (it could run code when "
                                  "loaded)", "Use a checkpoint saved by nnU-Net's own trainer"))
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise InputError(describe(path, f"is not a readable PyTorch checkpoint "
                                  f"({str(error).splitlines()[0][:120]})")) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("network_weights"),
                                                            dict):
        raise InputError(describe(path, "is not an nnU-Net checkpoint (no network_weights)"))
    return checkpoint


def _checked_architecture(configuration, folder: Path) -> None:
    """Refuse a plans network or layer class outside the allow-list (nnU-Net imports them)."""
    import pydoc

    import torch

    from napari_medseg.models.nnunet import ALLOWED_NETWORKS, PLANS_FILE

    where = folder / PLANS_FILE
    if configuration.network_arch_class_name not in ALLOWED_NETWORKS:
        raise InputError(describe(where, f"network {configuration.network_arch_class_name!r} "
                                  "is not one this plugin loads (allowed: "
                                  f"{', '.join(sorted(ALLOWED_NETWORKS))})"))
    kwargs = configuration.network_arch_init_kwargs
    for key in configuration.network_arch_init_kwargs_req_import:
        name = kwargs.get(key)
        if name is None:
            continue
        located = pydoc.locate(name) if str(name).startswith("torch.nn.") else None
        if not (isinstance(located, type) and issubclass(located, torch.nn.Module)):
            raise InputError(describe(where, f"layer {key}={name!r} is not a torch.nn layer: "
                                      "refused"))


def build_network(folder: Path, plans_json: dict, dataset: dict, checkpoints: list[dict],
                  spec) -> dict:
    """The plans' network once per fold with its weights, and nnU-Net's managers.

    Returns the keyword fields of `NnunetModel` (``networks``, ``fold_networks``,
    ``plans``, ``configuration``, ``dataset``, ``mirror_axes``).

    Parameters
    ----------
    folder : Path
        The nnU-Net trained-model folder.
    plans_json, dataset : dict
        Its ``plans.json`` and ``dataset.json``.
    checkpoints : list of dict
        The folds' checkpoints, read safely.
    spec : ModelSpec
        The folder's description.
    """
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(plans_json)
    labels = plans.get_label_manager(dataset)
    configuration = plans.get_configuration(spec.architecture["args"]["configuration"])
    if configuration.previous_stage_name is not None:
        raise InputError(describe(folder, "is a cascade stage (it needs the low-resolution "
                                  "stage's output): not supported", "Use 3d_fullres"))
    _checked_architecture(configuration, folder)
    network = get_network_from_plans(
        configuration.network_arch_class_name, configuration.network_arch_init_kwargs,
        configuration.network_arch_init_kwargs_req_import,
        determine_num_input_channels(plans, configuration, dataset),
        labels.num_segmentation_heads, allow_init=False,
        deep_supervision=False)
    networks = []
    for checkpoint in checkpoints:
        fold_network = copy.deepcopy(network)
        try:
            fold_network.load_state_dict(checkpoint["network_weights"], strict=True)
        except RuntimeError as error:
            raise InputError(describe(folder, "a checkpoint's weights do not fit the plans' "
                                      f"network ({str(error).splitlines()[0][:160]})")) from error
        networks.append(fold_network.eval())
    axes = checkpoints[0].get("inference_allowed_mirroring_axes")
    order = dataset.get("regions_class_order") if labels.has_regions else None
    return {"networks": tuple(class_logits(n, plans.transpose_forward, order) for n in networks),
            "fold_networks": tuple(networks), "plans": plans, "configuration": configuration,
            "dataset": dataset, "mirror_axes": tuple(axes) if axes is not None else None}


def class_logits(network, transpose_forward, regions_order=None):
    """An nnU-Net network as the plugin's own networks behave, for the features that
    run networks themselves (uncertainty, Shapley, click refinement, fine-tuning).

    Input and output are in the case's axis order (nnU-Net's ``transpose_forward``
    is applied and undone), and the output's softmax is the probability of each
    label value: a label-based network's logits as they are; for a region-based
    one, the log of `models.nnunet.class_probabilities` of its sigmoids.

    Parameters
    ----------
    network : torch.nn.Module
        nnU-Net's network of one fold.
    transpose_forward : sequence of int
        The plans' axis order of the network input.
    regions_order : sequence of int, optional
        ``regions_class_order`` of a region-based model.
    """
    import torch

    from napari_medseg.models.nnunet import class_probabilities

    class ClassLogits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network
            self.into = (0, 1, *(2 + int(a) for a in transpose_forward))
            self.back = tuple(int(i) for i in torch.argsort(torch.tensor(self.into)))

        def forward(self, x):
            out = self.network(x.permute(self.into)).permute(self.back)
            if regions_order is None:
                return out
            regions = torch.sigmoid(out.float()).transpose(0, 1)  # regions first
            values = class_probabilities(regions, regions_order).transpose(0, 1)
            return values.clamp_min(1e-7).log()

    return ClassLogits().eval()
