"""napari sample-data contribution: the BraTS-like sample case."""
from __future__ import annotations


def sample_case() -> list[tuple]:
    """Four contrasts (T1, T1ce, T2, FLAIR) and the reference labels as layer data."""
    from napari_medseg.layers import labels_layer, volume_layers
    from napari_medseg.sample import load_sample_case

    case = load_sample_case()
    return [*volume_layers(case.volume, visible="T1ce"),
            labels_layer(case.labels, name="reference")]
