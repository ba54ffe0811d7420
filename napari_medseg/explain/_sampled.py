"""Shapley attributions over many contrasts, by permutation sampling (see `explain_case`)."""
from __future__ import annotations

import numpy as np

from napari_medseg.explain._coalitions import coalition_probabilities
from napari_medseg.explain._explain import _coalition_values
from napari_medseg.explain._result import ShapleyResult, shapley_result, target_attribution
from napari_medseg.explain._shapley import coalitions_visited, permutation_shapley
from napari_medseg.inference._blocks import case_labels
from napari_medseg.progress import Progress, ProgressGenerator


def explain_sampled(model, image_t, base_t, volume, reference, targets, checked, baseline, overlap,
                    device, permutations, autocast=None) -> ProgressGenerator[ShapleyResult]:
    """Permutation-sampling Shapley for many contrasts: coalitions run on demand, once
    (``explain_case``'s arguments, prepared: inputs and baseline on the model grid;
    ``autocast`` the network's arithmetic, from `models.device.autocast_dtype`)."""
    from napari_medseg.models.device import precision_name

    contrasts = model.spec.input_names
    n = len(contrasts)
    full_code = 2**n - 1
    needed = sorted(coalitions_visited(n, permutations, seed=0) - {full_code})
    total = len(needed) + 1
    full = yield from _member_probabilities(model, image_t, base_t, full_code, n, overlap, device,
                                            autocast)
    # without a reference, each member (fold, ensemble) is compared with its own full prediction
    truths = [reference if reference is not None
              else case_labels(p[0], volume.shape) for p in full]

    def values_of(members) -> np.ndarray:  # [folds + 1 (ensemble), targets]
        return np.stack([_coalition_values(p, volume.shape, targets, truth)[0]
                         for p, truth in zip(members, truths)])

    cache: dict[int, np.ndarray] = {full_code: values_of(full)}
    yield Progress(1, total, f"coalition 1/{total}")
    for step, code in enumerate(needed, start=2):
        members = yield from _member_probabilities(model, image_t, base_t, code, n, overlap,
                                                   device, autocast)
        cache[code] = values_of(members)
        yield Progress(step, total, f"coalition {step}/{total}")
    results = {}
    for index, (name, labels) in enumerate(targets.items()):
        fold_phi = []
        for member in range(len(model.networks) + 1):
            phi, error = permutation_shapley(lambda c: cache[c][member, index], n,
                                             permutations, seed=0)
            fold_phi.append((phi, error))
        phi, error = fold_phi[-1]
        results[name] = target_attribution(
            name, labels, phi, np.array([p for p, _ in fold_phi[:-1]]),
            cache[2**n - 1][-1, index], cache[0][-1, index], checked.get(name),
            standard_error=error)
    return shapley_result(model, baseline, reference, results,
                          method="permutation sampling", permutations=permutations,
                          precision=precision_name(autocast))


def _member_probabilities(model, image_t, base_t, code, n, overlap, device, autocast):
    mask = np.array([[(code >> i) & 1 == 1 for i in range(n)]])
    per_fold = []
    for network in model.networks:
        probabilities = yield from coalition_probabilities(
            network, image_t, base_t, mask, model.spec.patch_size, model.spec.n_classes,
            overlap, device, autocast=autocast)
        per_fold.append(probabilities)
    return [*per_fold, sum(per_fold) / len(per_fold)]
