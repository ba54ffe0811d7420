"""A combo box listing the viewer's 3D Labels layers (Refine and Export share it)."""
from __future__ import annotations


def fill_labels_combo(combo, viewer, prefer_last: bool = False, select: str | None = None
                      ) -> list[str]:
    """Refill ``combo`` with the 3D Labels layers, keeping the current choice.

    With ``prefer_last``, a lost choice falls to the newest layer; ``select``
    (a layer name) takes precedence when listed. Returns the names.

    Parameters
    ----------
    combo : QComboBox
        The combo box to refill.
    viewer : napari.Viewer
        Whose layers are listed.
    prefer_last : bool
        A lost choice falls to the newest layer.
    select : str, optional
        A layer name to select when listed.
    """
    from napari.layers import Labels

    current = combo.currentText()
    names = [layer.name for layer in viewer.layers if isinstance(layer, Labels)
             and layer.ndim == 3]
    combo.clear()
    combo.addItems(names)
    if select in names:
        combo.setCurrentText(select)
    elif current in names:
        combo.setCurrentText(current)
    elif names and prefer_last:
        combo.setCurrentIndex(len(names) - 1)
    return names


def new_model_layer(event) -> str | None:
    """The name of a model's output layer just inserted (a layers ``inserted`` event)."""
    from napari_medseg.layers import is_model_output

    layer = getattr(event, "value", None)
    return layer.name if layer is not None and is_model_output(layer) else None
