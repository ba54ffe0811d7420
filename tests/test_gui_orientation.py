"""Anatomical display: a phantom with a marker stored RAS, LPS and oblique.

The marker sits in the patient's left, anterior, superior octant. Opened
through the plugin's reader it must land on the same world position and in
the right quadrant of the axial, coronal and sagittal screenshots
(radiological: anterior up, patient right on screen left; superior up).
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_medseg.orientation import (
    NEUROLOGICAL, RADIOLOGICAL, display_affine, nearest_orthogonal, obliquity_degrees,
    view_letters)
from tests.conftest import rotation

MARKER_RAS = np.array([-10.0, 12.0, 8.0])  # left, anterior, superior (RAS+ mm)
SHAPE_XYZ = (60, 68, 52)
LINEAR = {"ras": np.eye(3), "lps": np.diag([-1.0, -1.0, 1.0]),
          "oblique": rotation(14.0, 8.0) @ np.diag([1.0, 1.0, 1.2])}
# (order, marker above the head's centre, marker right of it) in the radiological view
VIEWS = {"axial": ((0, 1, 2), True, True), "coronal": ((1, 0, 2), True, True),
         "sagittal": ((2, 0, 1), True, False)}


def _phantom(path, linear):
    """A head-like ellipsoid (a gradient) with a bright ball at ``MARKER_RAS``."""
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ ((np.asarray(SHAPE_XYZ) - 1) / 2)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE_XYZ], indexing="ij"), -1)
    ras = ijk @ linear.T + affine[:3, 3]
    head = ((ras / [26.0, 30.0, 22.0]) ** 2).sum(-1) <= 1
    marker = np.linalg.norm(ras - MARKER_RAS, axis=-1) <= 4
    values = np.where(marker, 1000.0, np.where(head, 100.0 + ras[..., 2], 0.0))
    nib.save(nib.Nifti1Image(values.astype(np.float32), affine), str(path))
    return affine


def test_letters_follow_the_view_and_the_convention():
    radiological, neurological = ("down", "right"), ("down", "left")
    assert view_letters((1, 2), radiological) == {"top": "A", "bottom": "P", "left": "R",
                                                  "right": "L"}
    assert view_letters((0, 2), radiological) == {"top": "S", "bottom": "I", "left": "R",
                                                  "right": "L"}
    assert view_letters((0, 1), radiological) == {"top": "S", "bottom": "I", "left": "A",
                                                  "right": "P"}
    assert view_letters((1, 2), neurological)["left"] == "L"
    assert view_letters((2, 3), radiological, world_ndim=4)["top"] == "A"


def test_ras_and_lps_files_place_the_same_anatomy_at_the_same_world_point(affine):
    shape = (12, 14, 16)
    placed = display_affine(affine, shape)
    voxel_zyx = np.array([3.0, 5.0, 7.0])
    ras = (affine @ np.r_[voxel_zyx[::-1], 1.0])[:3]
    world = (placed @ np.r_[voxel_zyx, 1.0])[:3]
    if obliquity_degrees(affine) < 0.5:
        np.testing.assert_allclose(world, [-ras[2], -ras[1], -ras[0]], atol=1e-9)
        np.testing.assert_allclose(nearest_orthogonal(affine, shape), affine, atol=1e-12)
    else:  # shown on its nearest axes, turned about the grid's centre
        centre = (np.asarray(shape) - 1) / 2
        np.testing.assert_allclose((placed @ np.r_[centre, 1])[:3],
                                   -(affine @ np.r_[centre[::-1], 1])[2::-1], atol=1e-9)
        np.testing.assert_allclose(np.abs(placed[:3, :3]).sum(0), [2.5, 1.1, 0.9], atol=1e-9)


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    return {name: (folder / f"{name}.nii.gz", _phantom(folder / f"{name}.nii.gz", linear))
            for name, linear in LINEAR.items()}


def _marker_world(layer):
    voxels = np.argwhere(np.asarray(layer.data) > 500)
    return np.asarray(layer.data_to_world(voxels.mean(0)))


def _centroids(picture):
    """(row, column) of the head and of the bright marker on a screenshot."""
    grey = picture[..., :3].astype(float)
    yellow = (grey[..., 0] > 150) & (grey[..., 2] < 120)  # the orientation letters
    head = np.argwhere((grey.mean(-1) > 8) & ~yellow).mean(0)
    marker = np.argwhere(grey.min(-1) > 200).mean(0)
    return head, marker


@pytest.mark.gui
def test_phantom_opens_in_radiological_orientation_with_letters(make_napari_viewer, qtbot,
                                                                phantom_files):
    from napari_medseg._reader import read_layers

    viewer = make_napari_viewer(show=True)  # a hidden canvas renders nothing
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    qtbot.waitUntil(lambda: len(dock.anatomy.overlays) == 4, timeout=10000)  # one per turn
    worlds = {}
    for name, (path, _) in phantom_files.items():
        for layer in list(viewer.layers):
            layer.visible = False
        [(data, kwargs, _)] = read_layers(str(path))
        layer = viewer.add_image(data, **{**kwargs, "name": name, "contrast_limits": (0, 1000)})
        worlds[name] = _marker_world(layer)
        for view, (order, above, right) in VIEWS.items():
            viewer.dims.order = order
            viewer.dims.set_point(range(3), tuple(worlds[name]))
            viewer.reset_view()
            picture = viewer.screenshot(canvas_only=True, flash=False)
            head, marker = _centroids(picture)
            assert (marker[0] < head[0]) == above, (name, view, head, marker)
            assert (marker[1] > head[1]) == right, (name, view, head, marker)
    expected = [-MARKER_RAS[2], -MARKER_RAS[1], -MARKER_RAS[0]]  # (I, P, L)
    np.testing.assert_allclose(worlds["ras"], expected, atol=0.5)
    np.testing.assert_allclose(worlds["lps"], worlds["ras"], atol=1e-6)
    # an oblique file is drawn on its nearest axes: off by its rotation about the centre
    bound = 2 * np.sin(np.radians(obliquity_degrees(phantom_files["oblique"][1])) / 2)
    assert np.linalg.norm(worlds["oblique"] - expected) <= bound * np.linalg.norm(
        MARKER_RAS) + 1.0

    viewer.dims.order = (0, 1, 2)
    assert dock.anatomy.letters() == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    picture = viewer.screenshot(canvas_only=True, flash=False)
    top_strip = picture[: picture.shape[0] // 12, :, :3].astype(int)
    assert ((top_strip[..., 0] > 150) & (top_strip[..., 2] < 120)).any()  # "A" is drawn

    dock.convention_combo.setCurrentText(NEUROLOGICAL)
    assert dock.anatomy.letters()["left"] == "L"
    picture = viewer.screenshot(canvas_only=True, flash=False)
    head, marker = _centroids(picture)
    assert marker[1] < head[1]  # patient left now on the screen's left
    dock.convention_combo.setCurrentText(RADIOLOGICAL)
    assert dock.anatomy.letters()["left"] == "R"


@pytest.mark.gui
def test_empty_labels_layer_takes_the_image_grid_and_clicks_hit_the_marker(
        make_napari_viewer, phantom_files):
    from napari_medseg._reader import read_layers

    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    path, affine = phantom_files["lps"]
    [(data, kwargs, _)] = read_layers(str(path))
    image = viewer.add_image(data, **kwargs)
    viewer._new_labels()  # napari's "new labels layer" button: a world-aligned grid
    mask = viewer.layers[-1]
    assert mask.data.shape == image.data.shape
    np.testing.assert_allclose(mask.metadata["napari_medseg"]["affine"], affine)
    marker_voxel = tuple(int(v) for v in np.round(np.argwhere(data > 500).mean(0)))
    world = image.data_to_world(marker_voxel)
    assert tuple(int(v) for v in np.round(mask.world_to_data(world))) == marker_voxel


def _letter_shaders_built(viewer) -> list:
    """Per orientation letter, whether napari's text visual exists with its shader program
    built (napari makes an overlay's visual when it first shows, vispy builds at a draw)."""
    from napari_medseg._qt.canvas import viewer_canvas

    visuals = viewer_canvas(viewer)._viewer_overlay_to_visual
    return [any(item.node._program._need_build is False
                for item in next((found for key, found in visuals.items() if key is overlay), []))
            for name, overlay in viewer.canvas.overlays.items()
            if name.startswith("medseg_letter")]


@pytest.mark.gui
def test_letters_glyphs_are_rendered_before_the_first_layer(make_napari_viewer, qtbot,
                                                            phantom_files, monkeypatch,
                                                            recwarn):
    """The first case's paint renders no glyph and builds no letter shader: the dock
    rendered the letters' glyphs and drew the letters, clear, while the viewer was empty
    (vispy renders each glyph on the CPU at its first draw, and llvmpipe compiles each
    text visual's shaders at its first draw), without napari's warning about a plugin
    reaching into its window."""
    from napari._vispy.utils.qt_font import QtTextureFont

    from napari_medseg._qt.orientation import LETTER_GLYPHS, canvas_font
    from napari_medseg._reader import read_layers

    viewer = make_napari_viewer(show=True)
    viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    font = canvas_font(viewer)
    qtbot.waitUntil(lambda: set(LETTER_GLYPHS) <= set(font._glyphs), timeout=10000)
    # and the letters' text visuals are drawn, clear, so their shaders are built
    qtbot.waitUntil(lambda: _letter_shaders_built(viewer) == [True] * 4, timeout=10000)
    empty = viewer.screenshot(canvas_only=True, flash=False)
    assert not ((empty[..., 0] > 150) & (empty[..., 2] < 120)).any()  # and nothing shows
    rendered_later = []
    load_char = QtTextureFont._load_char
    monkeypatch.setattr(QtTextureFont, "_load_char",
                        lambda self, char: (rendered_later.append(char), load_char(self, char)))
    [(data, kwargs, _)] = read_layers(str(phantom_files["ras"][0]))
    viewer.add_image(data, **kwargs)
    for order in ((0, 1, 2), (1, 0, 2), (2, 0, 1)):  # axial, coronal, sagittal letters
        viewer.dims.order = order
        picture = viewer.screenshot(canvas_only=True, flash=False)
        assert ((picture[..., 0] > 150) & (picture[..., 2] < 120)).any()  # letters drawn
    assert rendered_later == []
    assert not [w for w in recwarn if "orientation.py" in w.filename], [
        str(w.message) for w in recwarn]


@pytest.mark.gui
def test_points_left_alone_after_the_images_are_drawn_without_crashing(
        make_napari_viewer, qtbot, phantom_files):
    """A case's image removed before its Points layer (a review case's topology errors,
    deleted by hand in napari's layer list): drawing the points alone crashed napari in
    glDrawArrays (llvmpipe) while the orientation letters were hidden or blank."""
    from napari_medseg._reader import read_layers
    from napari_medseg.layers import same_placement

    viewer = make_napari_viewer(show=True)
    viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    qtbot.wait(1500)  # the dock's letter warm-up
    [(data, kwargs, _)] = read_layers(str(phantom_files["lps"][0]))
    image = viewer.add_image(data, **kwargs)
    points = viewer.add_points(np.argwhere(data > 500)[::7].astype(float),
                               **same_placement(image), size=6, face_color="magenta",
                               symbol="ring", name="errors")
    qtbot.wait(500)
    viewer.layers.remove(image)
    for _ in range(3):  # paints of the points alone
        picture = viewer.screenshot(canvas_only=True, flash=False)
        qtbot.wait(100)
    assert list(viewer.layers) == [points] and picture.shape[0] > 0


@pytest.mark.gui
def test_the_letters_call_then_even_when_napari_refuses_them(make_napari_viewer, qtbot,
                                                             monkeypatch):
    """The dock starts its warm-up when the letters are in: a napari whose overlays
    changed must not leave the warm-up (and the device list) waiting forever."""
    from napari_medseg._qt import orientation

    def refuse(self):
        raise RuntimeError("napari changed its overlays")

    monkeypatch.setattr(orientation.AnatomicalView, "add_letter", refuse)
    viewer = make_napari_viewer()
    called = []
    with qtbot.capture_exceptions() as exceptions:
        view = orientation.AnatomicalView(viewer, then=lambda: called.append(True))
        qtbot.waitUntil(lambda: called == [True], timeout=10_000)
    assert view.overlays == {} and "napari changed" in str(exceptions[0][1])
