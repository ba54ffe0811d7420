"""Shapley contrast attributions: exact over coalitions of contrasts, rank agreement.

Follows Ren et al., "Clinical Interpretability of Deep Learning Segmentation
Through Shapley-Derived Agreement and Uncertainty Metrics" (BraTS 2024).
"""
from napari_medseg.explain._coalitions import BASELINES, coalition_probabilities, make_baseline
from napari_medseg.explain._explain import explain_case
from napari_medseg.explain._ranking import (
    PROTOCOL_RANKINGS, max_footrule, normalised_footrule_similarity, rank_variance,
    ranks_from_phi, validate_ranking)
from napari_medseg.explain._result import (
    ShapleyResult, TargetAttribution, attribution_targets)
from napari_medseg.explain._shapley import (
    coalition_masks, exact_shapley, permutation_shapley, shapley_coefficients)

__all__ = [
    "BASELINES", "PROTOCOL_RANKINGS", "ShapleyResult", "TargetAttribution",
    "attribution_targets", "coalition_masks", "coalition_probabilities", "exact_shapley",
    "explain_case", "make_baseline", "max_footrule", "normalised_footrule_similarity",
    "permutation_shapley", "rank_variance", "ranks_from_phi", "shapley_coefficients",
    "validate_ranking",
]
