"""The Points layer that shows the refinement clicks (green positive, red negative)."""
from __future__ import annotations

import numpy as np

from napari_medseg._qt.canvas import PaintHold
from napari_medseg.layers import same_placement

CLICKS_LAYER = "clicks"
GREEN, RED = (0.1, 0.9, 0.2, 1.0), (0.95, 0.15, 0.15, 1.0)


class ClickPoints:
    """The ``clicks`` Points layer of a viewer, placed over the edited Labels layer.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.
    labels_layer : callable
        Returns the Labels layer being edited (or None).
    """

    def __init__(self, viewer, labels_layer):
        self._viewer, self._labels_layer = viewer, labels_layer

    def layer(self):
        """The layer, added over the edited Labels layer when missing."""
        if CLICKS_LAYER not in self._viewer.layers:
            target = self._labels_layer()
            where = same_placement(target) if target is not None else {}
            with PaintHold():  # napari's build of the layer and its paint: two turns
                self._viewer.add_points(np.zeros((0, 3)), name=CLICKS_LAYER, size=3,
                                        border_width=0, **where)
                self._viewer.layers.selection.active = target
        return self._viewer.layers[CLICKS_LAYER]

    def add(self, position, positive: bool) -> None:
        """Show a click at voxel ``position`` (z, y, x), green if ``positive``, else red."""
        points = self.layer()
        colors = np.asarray(points.face_color).reshape(-1, 4)
        points.data = np.vstack([np.asarray(points.data).reshape(-1, 3), position])
        points.face_color = np.vstack([colors[: len(points.data) - 1], GREEN if positive
                                       else RED])

    def remove_last(self) -> None:
        """Drop the newest point (its click was undone or failed)."""
        if CLICKS_LAYER in self._viewer.layers and len(self._viewer.layers[CLICKS_LAYER].data):
            points = self._viewer.layers[CLICKS_LAYER]
            colors = np.asarray(points.face_color)[:-1]
            points.data = np.asarray(points.data)[:-1]
            if len(colors):
                points.face_color = colors

    def clear(self) -> None:
        """No points (a new object, or the clicks were accepted)."""
        if CLICKS_LAYER in self._viewer.layers:
            self._viewer.layers[CLICKS_LAYER].data = np.zeros((0, 3))
