"""The dock's freeze of long-lived objects (``_qt/gc_freeze``): napari's collection on a
layer removal skips them, and no removed layer is kept alive by the freeze."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from napari_medseg._qt import gc_freeze
from napari_medseg.layers import is_model_output
from tests.conftest import freeze_long_lived_objects


@pytest.fixture
def freeze_allowed(monkeypatch):
    monkeypatch.setenv(gc_freeze.SWITCH, "1")
    gc.unfreeze()  # as in a process the dock has not frozen yet (conftest froze the worker)
    yield
    gc_freeze.thaw(collect=True)  # nothing the test made stays frozen for the next test
    freeze_long_lived_objects()


def _layer_gone(qtbot, ref) -> None:
    """The layer is freed by a collection once napari's deferred work on it is done."""
    qtbot.wait(100)
    gc.collect()  # a frozen object would survive it
    assert ref() is None


def test_removals_collect_layers_whether_or_not_alive_at_the_freeze(
        make_napari_viewer, qtbot, freeze_allowed):
    viewer = make_napari_viewer()
    volume = np.random.default_rng(0).random((20, 30, 30)).astype(np.float32)
    early = viewer.add_image(volume, name="before the freeze")
    tracked_before = len(gc.get_objects())
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    qtbot.waitUntil(gc_freeze.is_frozen, timeout=60000)  # after the warm-up, when idle
    # a full collection now walks only what was created since: a fraction of before
    assert len(gc.get_objects()) < tracked_before / 2

    late = viewer.add_image(volume.copy(), name="after the freeze")
    qtbot.wait(200)  # the dock's and napari's deferred work on the new layer is done
    late_ref = weakref.ref(late)
    del late
    viewer.layers.remove("after the freeze")
    _layer_gone(qtbot, late_ref)  # collected by napari's collection, still frozen
    assert gc_freeze.is_frozen()

    early_ref = weakref.ref(early)
    del early
    viewer.layers.remove("before the freeze")
    _layer_gone(qtbot, early_ref)  # alive at the freeze: its removal thawed first
    assert not gc_freeze.is_frozen()


def test_closing_the_dock_thaws(make_napari_viewer, qtbot, freeze_allowed):
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    qtbot.waitUntil(gc_freeze.is_frozen, timeout=60000)
    viewer.window.remove_dock_widget(dock)
    dock.deleteLater()
    del dock
    qtbot.waitUntil(lambda: not gc_freeze.is_frozen(), timeout=5000)


def test_no_freeze_when_switched_off(make_napari_viewer, monkeypatch):
    monkeypatch.setenv(gc_freeze.SWITCH, "0")
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
    gc_freeze.freeze_after_warm_up(dock)
    assert not gc_freeze.is_frozen()


def test_a_running_section_does_not_delay_the_freeze_and_its_result_is_freed(
        sample_dock, qtbot, coarse_model_folder, freeze_allowed):
    viewer, dock = sample_dock(coarse_model_folder)
    models = dock.model_section
    gc_freeze.thaw()  # as at the warm-up's end in a fresh process: not frozen yet
    models.run()
    assert models.runner.busy
    gc_freeze.freeze_after_warm_up(dock)  # the warm-up ends while the model runs
    assert gc_freeze.is_frozen() and gc.get_count()[0] < 1000  # nothing young left to walk
    qtbot.waitUntil(lambda: not models.runner.busy, timeout=60000)
    output = next(layer for layer in viewer.layers if is_model_output(layer))
    output_ref = weakref.ref(output)
    del output
    viewer.layers.remove(output_ref().name)  # its metadata holds the probabilities
    _layer_gone(qtbot, output_ref)  # made after the freeze: collected, still frozen
    assert gc_freeze.is_frozen()
