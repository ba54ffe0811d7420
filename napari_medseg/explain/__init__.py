"""Shapley contrast attributions: exact over coalitions of contrasts, rank agreement.

Follows Ren et al., "Clinical Interpretability of Deep Learning Segmentation
Through Shapley-Derived Agreement and Uncertainty Metrics" (BraTS 2024).

Names load on first use (``lazy_loader``, as scikit-image does): the dock reads
`BASELINES` and `PROTOCOL_RANKINGS` when it opens, on the GUI thread, without
importing torch and SciPy's statistics with them (over a second there).
"""
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "_choices": ["BASELINES", "PROTOCOL_RANKINGS"],
    "_coalitions": ["coalition_probabilities", "make_baseline"],
    "_explain": ["explain_case"],
    "_ranking": ["max_footrule", "normalised_footrule_similarity", "rank_variance",
                 "ranks_from_phi", "validate_ranking"],
    "_result": ["GridMaps", "ShapleyResult", "TargetAttribution", "attribution_targets"],
    "_shapley": ["coalition_masks", "exact_shapley", "permutation_shapley",
                 "shapley_coefficients"],
})
