"""Anatomical display in the viewer: letters at the canvas edges, the convention,
and empty masks drawn on the image grid.

Layers are placed by `napari_medseg.orientation` (world axes: inferior,
posterior, left); this controller only labels and mirrors the view.
"""
from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import numpy as np
from qtpy.QtCore import QTimer

from napari_medseg._qt.canvas import viewer_canvas
from napari_medseg.layers import METADATA_KEY, geometry_metadata, same_placement
from napari_medseg.orientation import horizontal_direction, view_letters

_EDGES = {"top": "top_center", "bottom": "bottom_center", "left": "middle_left",
          "right": "middle_right"}
_AXIS_LABELS = ("S\u2192I", "A\u2192P", "R\u2192L")
# The glyphs the letters are drawn with: vispy measures the height of every text with
# "ÅÉÑŐjgpqy" (``_text_to_vbo``), then draws the letters themselves.
LETTER_GLYPHS = "ÅÉÑŐjgpqy APRLSI"
_WARMUP_GAP_MS = 50
_GLYPHS_MS = 30  # glyphs rendered per turn, in ms
_SHOWN, _CLEAR = (1.0, 0.85, 0.3, 1.0), (1.0, 0.85, 0.3, 0.0)


def viewer_camera(viewer):
    """The viewer's camera (napari 0.9 moved it to ``viewer.scene``)."""
    scene = getattr(viewer, "scene", None)  # napari >= 0.9; older: viewer.camera
    return scene.camera if scene is not None else viewer.camera


def canvas_font(viewer):
    """The texture font napari's canvas text is drawn with, or None where napari's
    internals differ (then the glyphs are simply rendered at their first draw)."""
    canvas = viewer_canvas(viewer)
    try:
        info = canvas.font_info()
        return info.font_manager.get_font(info.face)
    except (AttributeError, RuntimeError):
        return None


def anatomical_layers(viewer) -> list:
    """The layers placed from a file's affine by napari-medseg."""
    return [layer for layer in viewer.layers
            if (layer.metadata or {}).get(METADATA_KEY, {}).get("affine") is not None]


class AnatomicalView:
    """Orientation letters that follow the 2D view, and the display convention.

    The letters come in after the dock has shown, on later event-loop turns (see
    `prerender_letters` and `add_letter`): built and drawn inside the dock's first
    paint, they held napari 0.4 s there.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer to label.
    then : callable, optional
        Called on the GUI thread once every letter is in the canvas.
    """

    def __init__(self, viewer, then: Callable[[], None] | None = None):
        self._viewer = viewer
        self._then = then
        self.overlays = {}  # edge -> napari TextOverlay, as they come in
        viewer.dims.events.order.connect(self.refresh)
        viewer.dims.events.ndisplay.connect(self.refresh)
        viewer_camera(viewer).events.orientation.connect(self.refresh)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        self._label_axes()
        self._later(lambda view: view.prerender_letters())

    def prerender_letters(self, pending: str = LETTER_GLYPHS) -> None:
        """Render the letters' glyphs, about 30 ms of them per event-loop turn, then add
        the letters.

        vispy renders a glyph's distance field on the CPU the first time any
        text on the canvas draws it: 5-20 ms each for 16 glyphs on this CPU,
        up to 0.3 s together, all inside one paint. The dock pays them while
        the user is still choosing what to open.

        Parameters
        ----------
        pending : str
            The glyphs still to render.
        """
        font = canvas_font(self._viewer)
        started = time.perf_counter()
        while font is not None and pending and time.perf_counter() - started < _GLYPHS_MS / 1e3:
            font[pending[0]]  # renders the glyph into the font's atlas (once per glyph)
            pending = pending[1:]
        if font is None or not pending:
            self._later(lambda view: view.add_letter())
        else:
            self._later(lambda view: view.prerender_letters(pending))

    def add_letter(self) -> None:
        """Put the next edge's letter in the canvas (one per turn: llvmpipe compiles a
        text visual's two shader programs at its first draw, 50 ms each), then the next;
        after the last, call ``then``.

        A letter is drawn from the start and never hidden or emptied: on llvmpipe,
        napari's Points drawn alone after an image was removed crash in
        ``glDrawArraysInstanced`` (napari without the plugin too), unless a text visual
        is drawn with them; a hidden letter, or one drawn as a space (no glyph), does
        not count.
        """
        from napari.components.overlays import TextOverlay

        edge = next(edge for edge in _EDGES if edge not in self.overlays)
        overlay = TextOverlay(text="A", position=_EDGES[edge], font_size=14, color=_CLEAR,
                              visible=True)
        self._viewer.canvas.overlays[f"medseg_letter_{edge}"] = overlay
        self.overlays[edge] = overlay
        self.refresh()
        if len(self.overlays) < len(_EDGES):
            self._later(lambda view: view.add_letter())
        else:  # on a later turn, once this letter has drawn
            self._later(lambda view: view._finish())

    def _finish(self) -> None:
        """Call ``then`` (once)."""
        then, self._then = self._then, None
        if then is not None:
            then()

    def _later(self, step) -> None:
        """``step(self)`` on a later turn; a closed dock's view is let go meanwhile. A step
        that fails (napari's internals changed) still lets ``then`` run."""
        view_ref = weakref.ref(self)

        def run_step() -> None:
            view = view_ref()
            if view is None:
                return
            try:
                step(view)
            except Exception:
                view._finish()
                raise

        QTimer.singleShot(_WARMUP_GAP_MS, run_step)

    def set_convention(self, convention: str) -> None:
        """Show the radiological (patient right on screen left) or neurological view."""
        camera = viewer_camera(self._viewer)
        camera.orientation2d = (camera.orientation2d[0], horizontal_direction(convention))
        self.refresh()

    def letters(self) -> dict[str, str]:
        """The letter shown at each edge (empty when the view is not anatomical)."""
        viewer = self._viewer
        if viewer.dims.ndisplay != 2 or not anatomical_layers(viewer) or viewer.dims.ndim < 3:
            return dict.fromkeys(_EDGES, "")
        return view_letters(viewer.dims.displayed, viewer_camera(viewer).orientation2d,
                            viewer.dims.ndim)

    def refresh(self, *_) -> None:
        """Redraw the letters for the current view; without one, a letter stays drawn,
        fully transparent (never hidden, never empty: see `add_letter`)."""
        for edge, letter in self.letters().items():
            overlay = self.overlays.get(edge)
            if overlay is None:
                continue
            if letter:
                overlay.text, overlay.color = letter, _SHOWN
            else:
                overlay.color = _CLEAR

    def _on_inserted(self, event) -> None:
        layer = event.value
        adopt_empty_labels(self._viewer, layer)
        self._label_axes()
        self.refresh()

    def _label_axes(self) -> None:
        """Name the sliders by the anatomy they move through (S\u2192I is axial)."""
        if anatomical_layers(self._viewer) and self._viewer.dims.ndim == 3:
            self._viewer.dims.axis_labels = _AXIS_LABELS


def adopt_empty_labels(viewer, layer) -> bool:
    """Put a new, empty, unplaced 3D Labels layer on the case's image grid.

    napari's "new labels" button makes a grid aligned with the world axes;
    the mask a user then draws must share the images' voxels for refinement
    and export to be voxel-exact, so an empty one takes their grid and
    affine. Returns whether the layer was adopted.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer holding the case's images.
    layer : napari Labels layer
        A layer just added.
    """
    from napari.layers import Image, Labels

    if not isinstance(layer, Labels) or layer.ndim != 3 or METADATA_KEY in layer.metadata:
        return False
    images = [item for item in anatomical_layers(viewer) if isinstance(item, Image)
              and item.ndim == 3]
    if not images or np.any(np.asarray(layer.data)):
        return False
    image = images[0]
    stored = image.metadata[METADATA_KEY]
    if tuple(layer.data.shape) != tuple(image.data.shape):
        layer.data = np.zeros(image.data.shape, dtype=np.asarray(layer.data).dtype)
    for transform, value in same_placement(image).items():
        setattr(layer, transform, value)
    layer.metadata = {**layer.metadata, **geometry_metadata(
        np.asarray(stored["affine"]), tuple(stored.get("source_paths", ())))}
    return True
