"""Click refinement core: encoding, robot user, engines, session, undo, picking."""
from __future__ import annotations

import json

import numpy as np
import pytest

from napari_medseg.errors import InputError
from napari_medseg.interactive import (
    Click, InteractiveSession, clicks_to_json, clicks_to_reach, guidance_maps,
    make_engine, read_clicks, robot_click, robot_trial)
from napari_medseg.interactive._picking import voxel_on_ray
from napari_medseg.io import Volume


def _ball(shape, centre, radius):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2


def test_guidance_weights_newest_click_most_and_separates_signs():
    clicks = [Click((5, 5, 5), True), Click((16, 16, 16), False), Click((15, 5, 5), True)]
    maps = guidance_maps((20, 20, 20), clicks)
    assert maps[0][15, 5, 5] == pytest.approx(1.0)
    assert maps[0][5, 5, 5] == pytest.approx(0.6, abs=1e-6)
    assert maps[1][16, 16, 16] == pytest.approx(0.6, abs=1e-6) and maps[1][5, 5, 5] == 0
    shifted = guidance_maps((8, 8, 8), clicks, origin=(12, 2, 2))
    np.testing.assert_allclose(shifted, maps[:, 12:20, 2:10, 2:10])  # a box sees the same


def test_robot_clicks_centre_of_largest_error():
    target = _ball((40, 40, 40), (20, 20, 20), 8)
    mask = target.copy()
    mask[20:] = False  # half missed
    mask |= _ball(mask.shape, (5, 5, 5), 3)  # a smaller spurious blob
    click = robot_click(target, mask)
    assert click.positive and target[click.position] and not mask[click.position]
    assert robot_click(target, target) is None
    only_extra = robot_click(target, target | _ball(mask.shape, (5, 5, 5), 3))
    assert not only_extra.positive and only_extra.position == (5, 5, 5)
    assert clicks_to_reach([0.2, 0.86, 0.95], 0.9) == 2
    assert clicks_to_reach([0.2, 0.5], 0.9, cap=20) == 20


def test_click_file_errors_name_the_line(tmp_path):
    good = tmp_path / "clicks.json"
    good.write_text(json.dumps([{"position": [1, 2, 3]}, {"position": [4, 5, 6],
                                                           "positive": False}]), encoding="utf-8")
    clicks = read_clicks(good)
    assert clicks[1].position == (4, 5, 6) and not clicks[1].positive
    bad = tmp_path / "bad.json"
    bad.write_text('[\n{"position": [1, 2, 3]},\n{"position": [1, 2 3]}\n]', encoding="utf-8")
    with pytest.raises(InputError, match="line 3"):
        read_clicks(bad)
    short = tmp_path / "short.json"
    short.write_text('[{"position": [1, 2]}]', encoding="utf-8")
    with pytest.raises(InputError, match="click 1"):
        read_clicks(short)


def _wt_session(case, engine, mask=None):
    return InteractiveSession(case.volume, mask, label=1, engine=engine)


def test_random_walker_refines_toy_case_and_undo_is_exact(small_case):
    target = small_case.labels.data > 0
    session = _wt_session(small_case, "random_walker")
    assert session.engine.name == "random_walker"
    trial = robot_trial(session, target, min_clicks=5, cap=5)
    assert trial["dice"][0] == 0 and max(trial["dice"][1:6]) >= 0.85, trial["dice"]
    before = session.mask.copy()
    click = robot_click(target, session.mask == 1)
    session.click(click.position, click.positive)
    assert session.changes[-1].n_voxels > 0
    np.testing.assert_array_equal(session.undo(), before)
    assert len(session.clicks) == 5 and session.history[-1]["undo"]
    assert not session.reset().any()


def test_random_walker_grows_a_new_object_from_one_click_not_a_speck():
    """A positive click in the middle of an unlabelled blob: the voxels most like the click's
    surroundings seed the label, so one click takes most of the blob and not the similar,
    dimmer tissue around it (a seed of the click's few voxels alone took 1-2 % of it)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    shape = (56, 56, 56)
    radius = np.sqrt(((np.indices(shape) - 28) ** 2).sum(0))
    blob = radius <= 10
    image = np.where(blob, 0.6, np.where(radius <= 22, 0.45, 0.2)).astype(np.float32)
    image = ndi.gaussian_filter(image, 1.0) + rng.normal(0, 0.01, shape).astype(np.float32)
    session = InteractiveSession(Volume(image[None], np.eye(4), ("T1",)),
                                 np.zeros(shape, np.uint8), label=1, engine="random_walker")
    grown = session.click((28, 28, 28), positive=True) == 1
    assert 2 * (grown & blob).sum() / (grown.sum() + blob.sum()) >= 0.8
    assert (grown & ~blob).sum() <= 0.02 * blob.sum()


def test_random_walker_click_at_a_tissue_boundary_seeds_no_core():
    """On the edge between two tissues the click's surroundings are not uniform: no core is
    seeded, so the new object does not leak along the edge (with a core: 2,329 voxels)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    shape = (56, 56, 56)
    image = np.full(shape, 0.2, np.float32)
    image[:, :, 28:] = 0.5
    image = ndi.gaussian_filter(image, 1.0) + rng.normal(0, 0.01, shape).astype(np.float32)
    session = InteractiveSession(Volume(image[None], np.eye(4), ("T1",)),
                                 np.zeros(shape, np.uint8), label=1, engine="random_walker")
    grown = session.click((28, 28, 28), positive=True) == 1
    assert 0 < grown.sum() < 300


def test_auto_engine_falls_back_without_model_contrasts(small_case):
    ct = Volume(small_case.volume.data[:1], small_case.volume.affine, ("CT",))
    assert make_engine("auto", ct).name == "random_walker"
    assert make_engine("learned", small_case.volume).name == "learned"
    with pytest.raises(InputError, match="lacks"):
        make_engine("learned", ct)
    with pytest.raises(InputError, match="unknown click engine"):
        make_engine("magic", ct)


def test_bad_clicks_leave_the_mask_unchanged(small_case):
    session = _wt_session(small_case, "random_walker", small_case.labels.data)
    before = session.mask.copy()
    with pytest.raises(InputError, match="outside the volume"):
        session.click((-1, 5, 5))
    with pytest.raises(InputError, match="outside the volume"):
        session.click((5, 5, 10_000))
    np.testing.assert_array_equal(session.mask, before)
    with pytest.raises(InputError, match="differs from the image"):
        InteractiveSession(small_case.volume, before[1:], engine="random_walker")


def test_ray_picking_front_label_or_brightest():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[6, 5, 5] = 2
    image = np.zeros((10, 10, 10), np.float32)
    image[3, 2, 2] = 5.0
    assert voxel_on_ray((0, 5, 5), (9, 5, 5), labels, image, positive=False) == (6, 5, 5)
    assert voxel_on_ray((0, 2, 2), (9, 2, 2), labels, image, positive=True) == (3, 2, 2)
    assert voxel_on_ray((0, 2, 2), (9, 2, 2), labels, image, positive=False) is None


def test_cli_refine_replays_clicks_and_bench_clicks(small_case, tmp_path, capsys):
    from napari_medseg.cli import main
    from napari_medseg.io import read_labels
    from napari_medseg.sample import case_files, write_case

    write_case(small_case, tmp_path / "cases", "toy")
    images, reference = case_files(tmp_path / "cases", "toy")
    target = small_case.labels.data > 0
    from napari_medseg.io import read_volume

    # the files hold the intensities quantised: replay on what the CLI reads
    session = InteractiveSession(read_volume(images), engine="random_walker")
    for _ in range(3):
        click = robot_click(target, session.mask == 1)
        session.click(click.position, click.positive)
    (tmp_path / "clicks.json").write_text(clicks_to_json(session.clicks), encoding="utf-8")
    out = tmp_path / "refined.nii.gz"
    assert main(["refine", *map(str, images), "--clicks", str(tmp_path / "clicks.json"),
                 "--engine", "random_walker", "-o", str(out)]) == 0
    np.testing.assert_array_equal(read_labels(out).data, session.mask)  # reproducible edits
    (tmp_path / "bad.json").write_text('[{"position": [1, 2, 3]},\n oops]', encoding="utf-8")
    assert main(["refine", *map(str, images), "--clicks", str(tmp_path / "bad.json"),
                 "-o", str(tmp_path / "x.nii.gz")]) == 2
    assert "line 2" in capsys.readouterr().err
    report = tmp_path / "bench.json"
    assert main(["bench-clicks", str(tmp_path / "cases"), "--clicks", "2", "--engine",
                 "random_walker", "--json", str(report)]) == 0
    data = json.loads(report.read_bytes())
    assert {t["target"] for t in data["trials"]} == {"label 1", "label 2", "label 3", "whole"}
    assert 0 <= data["summary"]["dice@1"] <= 1 and data["summary"]["latency_median_ms"] > 0
    assert all(len(t["label_dice"]) == len(t["latency_s"]) + 1 for t in data["trials"])
    assert 0 <= data["summary"]["harm_rate"] <= 1
