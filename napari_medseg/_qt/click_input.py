"""Mouse and keyboard input for click refinement.

A press and release without dragging is a click (a drag still pans or
rotates the camera). In 2D the click is the voxel under the cursor on the
current slice; in 3D it is found along the camera ray
(`napari_medseg.interactive._picking.voxel_on_ray`). Shift inverts the
sign chosen in the dock. Ctrl-Z on the edited Labels layer undoes a click.
"""
from __future__ import annotations

import numpy as np

_DRAG_PIXELS = 3.0


class ClickInput:
    """Installs/removes the viewer callbacks that feed `RefineSection.add_click`."""

    def __init__(self, viewer, section):
        self._viewer, self._section = viewer, section
        self.active = False
        self._bound_layer = None

    def set_active(self, active: bool) -> None:
        """Start or stop turning mouse clicks into refinement clicks."""
        callbacks = self._viewer.mouse_drag_callbacks
        if active and self._on_mouse not in callbacks:
            callbacks.append(self._on_mouse)
            self._bind_undo()
        elif not active and self._on_mouse in callbacks:
            callbacks.remove(self._on_mouse)
        self.active = active

    def _bind_undo(self) -> None:
        from app_model.types import KeyCode, KeyMod

        layer = self._section.labels_layer()
        if layer is None or (self._bound_layer is not None and layer == self._bound_layer):
            return
        layer.bind_key(KeyMod.CtrlCmd | KeyCode.KeyZ,
                       lambda bound: self._section.on_layer_undo(bound), overwrite=True)
        self._bound_layer = layer

    def _on_mouse(self, viewer, event):
        if event.type != "mouse_press" or event.button != 1:
            return
        pressed = np.asarray(event.pos, float)
        yield
        while event.type == "mouse_move":
            yield
        if event.type == "mouse_release" and np.linalg.norm(
                np.asarray(event.pos, float) - pressed) <= _DRAG_PIXELS:
            self.click_at(event.position, "Shift" in event.modifiers,
                          getattr(event, "view_direction", None),
                          list(getattr(event, "dims_displayed", [])))

    def click_at(self, world_position, invert: bool = False, view_direction=None,
                 dims_displayed=None) -> bool:
        """Refinement click at a world position (what a mouse event carries).

        Parameters
        ----------
        world_position : sequence of float
            Where the mouse is, in world coordinates.
        invert : bool
            Shift held: the other sign.
        view_direction : sequence of float, optional
            The camera's view direction (3D view: the click lands on the ray's first
            labelled or bright voxel).
        dims_displayed : sequence of int, optional
            The displayed axes (3D view).
        """
        from napari.utils.notifications import show_error

        self._bind_undo()
        layer = self._section.labels_layer()
        if layer is None:
            show_error("No Labels layer to edit: run a model or add an empty Labels layer first")
            return False
        positive = self._section.positive_button.isChecked() != bool(invert)
        if self._viewer.dims.ndisplay == 3 and view_direction is not None:
            voxel = self._voxel_in_3d(layer, world_position, view_direction, dims_displayed,
                                      positive)
            if voxel is None:
                show_error("Nothing under the cursor in 3D: click on the rendered data, or "
                           "switch to the 2D view")
                return False
        else:
            voxel = layer.world_to_data(world_position)[-3:]
        return self._section.add_click(voxel, positive)

    def _voxel_in_3d(self, layer, position, direction, displayed, positive):
        from napari_medseg.interactive._picking import voxel_on_ray

        start, end = layer.get_ray_intersections(position, direction, displayed, world=True)
        if start is None:
            return None
        images = [item for item in self._section.image_layers().values() if item.visible]
        image = np.asarray(images[0].data) if images else None
        return voxel_on_ray(start[-3:], end[-3:], np.asarray(layer.data), image, positive)
