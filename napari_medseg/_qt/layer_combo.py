"""A combo box listing the viewer's 3D Labels layers (Refine and Export share it)."""
from __future__ import annotations


def fill_labels_combo(combo, viewer, prefer_last: bool = False) -> list[str]:
    """Refill ``combo`` with the 3D Labels layers, keeping the current choice.

    With ``prefer_last``, a lost choice falls to the newest layer. Returns the names.
    """
    from napari.layers import Labels

    current = combo.currentText()
    names = [layer.name for layer in viewer.layers if isinstance(layer, Labels)
             and layer.ndim == 3]
    combo.clear()
    combo.addItems(names)
    if current in names:
        combo.setCurrentText(current)
    elif names and prefer_last:
        combo.setCurrentIndex(len(names) - 1)
    return names
