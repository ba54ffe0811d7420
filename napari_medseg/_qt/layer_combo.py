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


def new_target_layer(event, current: str | None) -> str | None:
    """The name of a layer just inserted (a layers ``inserted`` event) that a section
    which edits or exports should now target: a model's output, or the `resampled_copy`
    of the ``current`` choice.

    Parameters
    ----------
    event : napari event or None
        The layers' ``inserted`` event, if any.
    current : str or None
        The section's current choice.
    """
    from napari_medseg.layers import is_model_output

    layer = _inserted(event)
    if layer is not None and is_model_output(layer):
        return layer.name
    return resampled_copy(event, current)


def _inserted(event):
    """The layer an ``inserted`` event brings (None for other events: a removal's layer
    is gone)."""
    return event.value if getattr(event, "type", None) == "inserted" else None


def resampled_copy(event, current: str | None) -> str | None:
    """The name of the layer just inserted when it is ``current`` resampled onto the
    case's grid (*Resample onto one grid*), else None.

    Parameters
    ----------
    event : napari event or None
        The layers' ``inserted`` event, if any.
    current : str or None
        A section's current choice.
    """
    from napari_medseg.layers import METADATA_KEY

    layer = _inserted(event)
    if layer is None or not current:
        return None
    moved_from = layer.metadata.get(METADATA_KEY, {}).get("resampled_from")
    return layer.name if moved_from == current else None


NEW_OBJECT = "new object"


def fill_object_combo(combo, layer) -> None:
    """Refill the Refine section's object list: ``"VALUE NAME"`` per known or present
    label of ``layer``, then 'new object'; the current choice is kept when listed.

    Parameters
    ----------
    combo : QComboBox
        The object combo box.
    layer : napari Labels layer or None
        The edited layer (its label names and the values it holds).
    """
    from napari_medseg.labels import label_names, present_labels

    current = combo.currentText()
    names = dict(label_names())
    if layer is not None:
        names.update(layer.metadata.get("napari_medseg", {}).get("label_names", {}))
        present = present_labels(layer.data) if layer.data.size < 5e7 else []
        names.update({v: f"label {v}" for v in present if v not in names})
    combo.clear()
    combo.addItems([f"{value} {name}" for value, name in sorted(names.items())] + [NEW_OBJECT])
    if current and combo.findText(current) >= 0:
        combo.setCurrentText(current)


def object_value(combo, layer) -> int:
    """The label value the object combo names ('new object': one above the largest present).

    Parameters
    ----------
    combo : QComboBox
        The object combo box.
    layer : napari Labels layer or None
        The edited layer.
    """
    import numpy as np

    text = combo.currentText()
    if text == NEW_OBJECT:
        return (int(np.max(layer.data)) if layer is not None and layer.data.size else 0) + 1
    return int(text.split()[0]) if text else 1
