"""Shared fixtures: small real files and generator cases."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs two workers on this 2-core CPU) each worker
    computes on one thread, so the two do not fight over the cores. The dock's freeze of
    long-lived objects (``_qt/gc_freeze``) is off: napari's viewer fixture checks with a
    young-generation collection that each test's viewer was freed; test_gc_freeze turns
    it on where it is tested."""
    os.environ["NAPARI_MEDSEG_GC_FREEZE"] = "0"
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def freeze_long_lived_objects() -> None:
    """Move what lives for the whole worker (napari's GUI, torch, SciPy and the modules
    the dock's warm-up imports) to the permanent generation, as the dock does in use
    (``_qt/gc_freeze``). napari's canvas collects everything on each layer removal,
    twice when a viewer closes: 0.2 s a collection with these modules loaded, about
    0.25 s of each dock test's 2.5 s of viewer overhead. Objects made later, every
    test's viewer among them, are collected as before, so napari's check that each
    test's viewer was freed is unchanged."""
    import gc
    import importlib

    from napari_medseg._qt.warmup import MODULES

    for name in ("napari.viewer", "napari._qt.qt_viewer", *MODULES):
        importlib.import_module(name)
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def _long_lived_objects_frozen():
    freeze_long_lived_objects()


def rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    """A 3x3 rotation about z then x (an oblique acquisition)."""
    z, x = np.deg2rad(degrees_z), np.deg2rad(degrees_x)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rx @ rz


def make_affine(kind: str) -> np.ndarray:
    """RAS, LPS-stored and oblique-with-flip voxel-to-world matrices."""
    spacing = np.array([0.9, 1.1, 2.5])
    affine = np.eye(4)
    if kind == "ras":
        affine[:3, :3] = np.diag(spacing)
        affine[:3, 3] = [-40.0, -60.0, -20.0]
    elif kind == "lps":
        affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) * spacing
        affine[:3, 3] = [40.0, 60.0, -20.0]
    elif kind == "oblique":
        affine[:3, :3] = rotation(20.0, 12.0) @ np.diag([-1.0, 1.0, 1.0]) @ np.diag(spacing)
        affine[:3, 3] = [31.5, -12.25, 7.0]
    else:
        raise ValueError(kind)
    return affine


@pytest.fixture(params=["ras", "lps", "oblique"])
def affine(request) -> np.ndarray:
    return make_affine(request.param)


@pytest.fixture(scope="session")
def small_case():
    """A generated case at 3 mm (fast), shared by the session."""
    from napari_medseg.sample import generate_case

    return generate_case(11, spacing=3.0)


def make_model_folder(folder, widths=(4, 8), patch=(32, 32, 32), spacing=(3.0, 3.0, 3.0),
                      n_folds=2, suffix=".safetensors", seed=0, labels=None):
    """A real (untrained, tiny) UNet3D model folder with spec and checksums (BraTS's
    labels unless ``labels`` is given)."""
    import torch

    from napari_medseg.labels import BRATS_LABELS, BRATS_REGIONS
    from napari_medseg.models import save_model, sha256_of
    from napari_medseg.models.spec import FoldSpec, InputSpec, ModelSpec
    from napari_medseg.models.unet import UNet3D

    arch = {"in_channels": 4, "n_classes": 4, "widths": list(widths), "dropout": 0.1}
    networks = []
    for index in range(n_folds):
        torch.manual_seed(seed + index)
        networks.append(UNet3D(**arch))
    spec = ModelSpec(name="tiny", version="0.0.1", architecture={"name": "unet3d", "args": arch},
                     inputs=tuple(InputSpec(c) for c in ("T1", "T1ce", "T2", "FLAIR")),
                     labels=labels or BRATS_LABELS, regions=BRATS_REGIONS,
                     patch_size=tuple(patch),
                     spacing=tuple(spacing), folds=())
    if suffix == ".safetensors":
        save_model(folder, spec, networks, half=False)
        return folder
    folder.mkdir(parents=True, exist_ok=True)  # a pickled state dict, as users ship them
    folds = []
    for index, network in enumerate(networks):
        path = folder / f"fold{index}{suffix}"
        torch.save(network.state_dict(), str(path))
        folds.append(FoldSpec(path.name, sha256_of(path)))
    (folder / "model.json").write_text(replace(spec, folds=tuple(folds)).to_json(),
                                       encoding="utf-8")
    return folder


@pytest.fixture
def tiny_model_folder(tmp_path):
    return make_model_folder(tmp_path / "tiny_model")


@pytest.fixture
def coarse_model_folder(tmp_path):
    """A tiny model working at 6 mm: few windows, for the coalition-heavy tests."""
    return make_model_folder(tmp_path / "coarse_model", patch=(16, 16, 16),
                             spacing=(6.0, 6.0, 6.0))


def _labels_the_click_network_lacks():
    from dataclasses import replace

    from napari_medseg.labels import BRATS_LABELS

    return tuple(replace(info, name=f"{info.name}*") for info in BRATS_LABELS)


@pytest.fixture
def coarse_model_of_other_labels(tmp_path):
    """`coarse_model_folder` with labels named otherwise than BraTS's: the click network
    does not know them, so suggested clicks come from the uncertainty maps (in a second,
    where the click network's second opinion on the sample takes 8 s on one thread)."""
    return make_model_folder(tmp_path / "other_labels_model", patch=(16, 16, 16),
                             spacing=(6.0, 6.0, 6.0), labels=_labels_the_click_network_lacks())


@pytest.fixture
def tiny_model_of_other_labels(tmp_path):
    """`tiny_model_folder` with labels the click network does not know (see above): the
    CLI's uncertainty suggestions come from the maps, not a second opinion at 1.5 mm."""
    return make_model_folder(tmp_path / "other_labels_model",
                             labels=_labels_the_click_network_lacks())


@pytest.fixture
def hold_after_last_report(monkeypatch):
    """A factory: ``hold(module, name)`` replaces the core generator ``module.name`` with
    one that, after its last progress report, waits until the returned event is set: a
    task whose result is on its way but has not reached the GUI yet (a cancel then comes
    too late). ``hold.reported`` is set once that point is reached."""
    import threading

    release, reported = threading.Event(), threading.Event()

    def hold(module, name: str) -> threading.Event:
        real = getattr(module, name)

        def held(*args, **kwargs):
            result = yield from real(*args, **kwargs)
            reported.set()
            release.wait(120)
            return result

        monkeypatch.setattr(module, name, held)
        return release

    hold.reported, hold.release = reported, release
    yield hold
    release.set()  # a test that failed midway leaves no thread waiting


@pytest.fixture
def replace_case_while(qtbot, small_case, tmp_path, hold_after_last_report):
    """A factory: ``replace_case_while(dock, runner, start, held)`` starts a dock task with
    ``start()``, waits (when ``held``) until it has made its last report
    (`hold_after_last_report`), replaces the case with `small_case` through the dock's
    Open, lets the task go on, and waits until ``runner`` is idle."""
    from napari_medseg.sample import case_files, write_case

    def replace(dock, runner, start, held: bool) -> None:
        write_case(small_case, tmp_path, "c1")
        images, _ = case_files(tmp_path, "c1")
        assert start() is not None
        if held:
            qtbot.waitUntil(hold_after_last_report.reported.is_set, timeout=120_000)
        opener = dock.case_section.opener
        with qtbot.waitSignal(opener.runner.settled, timeout=60_000):
            opener.open_paths([str(path) for path in images], replace=True)
        hold_after_last_report.release.set()
        qtbot.waitUntil(lambda: not runner.busy, timeout=120_000)

    return replace


@pytest.fixture
def sample_dock(make_napari_viewer):
    """A factory: a real viewer with the sample case and the dock, optionally a model (CPU)."""

    def open_dock(model_folder=None, show: bool = False):
        viewer = make_napari_viewer(show=show)
        viewer.open_sample("napari-medseg", "brats_like_case")
        _, dock = viewer.window.add_plugin_dock_widget("napari-medseg", "MedSeg")
        if model_folder is not None:
            dock.model_section.add_model_folder(model_folder)
            dock.model_section.device_combo.setCurrentText("cpu")
        return viewer, dock

    return open_dock


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory, monkeypatch):
    """Recovery files and fine-tuned models go to a per-test folder, never the user's."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("NAPARI_MEDSEG_RECOVERY_DIR", str(base / "recovery"))
    monkeypatch.setenv("NAPARI_MEDSEG_MODELS_DIR", str(base / "models"))


class PaintOrder(list):
    """In order: each layer inserted (``"+name"``), each canvas paint (``"paint"``) and
    each event-loop turn that ran timers (``"timer"``, once between two other entries)."""

    def painted_after_a_timer_turn(self, name: str) -> bool:
        """Whether the first paint after layer ``name`` came in followed a timer turn:
        napari's build of the layer and its paint were two stalls, not one."""
        after = self[self.index(f"+{name}") + 1:]
        return "paint" in after and "timer" in after[:after.index("paint")]


@pytest.fixture
def paint_turns():
    """A factory: ``watch(viewer)`` returns a `PaintOrder` that records until the test ends."""
    from qtpy.QtCore import QTimer

    from napari_medseg._qt.canvas import viewer_canvas

    timers = []

    def watch(viewer) -> PaintOrder:
        order = PaintOrder()
        viewer.layers.events.inserted.connect(lambda event: order.append(f"+{event.value.name}"))
        viewer_canvas(viewer)._scene_canvas.events.draw.connect(
            lambda event: order.append("paint"))
        timer = QTimer()
        timer.setInterval(1)
        timer.timeout.connect(lambda: order.append("timer") if order[-1:] != ["timer"] else None)
        timer.start()
        timers.append(timer)
        return order

    yield watch
    for timer in timers:
        timer.stop()


@pytest.fixture
def insertion_turns():
    """A factory: ``watch(viewer)`` returns two lists, the names of the layers inserted
    and, for the event posted at each insertion, how many layers were in by the time it
    was delivered: ``[1, 2, ...]`` when every layer came in its own event-loop turn (napari
    answered input and painted in between)."""
    from qtpy.QtCore import QCoreApplication, QEvent, QObject

    class Probe(QObject):
        def __init__(self):
            super().__init__()
            self.inserted: list[str] = []
            self.delivered: list[int] = []

        def event(self, event) -> bool:
            self.delivered.append(len(self.inserted))
            return True

    probes = []

    def watch(viewer, signal: str = "inserted"):
        probe = Probe()
        probes.append(probe)
        getattr(viewer.layers.events, signal).connect(lambda event: (
            probe.inserted.append(event.value.name),
            QCoreApplication.postEvent(probe, QEvent(QEvent.Type.User))))
        return probe.inserted, probe.delivered

    return watch
