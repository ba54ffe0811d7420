"""A click changes only what it is about: local, multi-label aware, for every engine."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_medseg.errors import InputError
from napari_medseg.interactive import InteractiveSession, read_clicks, robot_click, robot_trial
from napari_medseg.interactive._edit import local_edit
from napari_medseg.interactive._model_engine import ModelEngine
from napari_medseg.interactive._robot import HARM_DICE, label_dices
from napari_medseg.io import Volume

SHAPE = (40, 40, 40)


def _ball(centre, radius, shape=SHAPE):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2


def _toy_case(seed=0):
    """Two labels: a core (1) inside oedema (2); two contrasts that tell them apart."""
    rng = np.random.default_rng(seed)
    reference = np.zeros(SHAPE, np.uint8)
    reference[_ball((20, 20, 20), 12)] = 2
    reference[_ball((20, 20, 20), 6)] = 1
    bright = np.select([reference == 1, reference == 2], [3.0, 2.0], 1.0)
    dark = np.select([reference == 1, reference == 2], [1.0, 2.5], 1.5)
    data = np.stack([bright, dark]).astype(np.float32)
    data += rng.normal(0, 0.05, data.shape).astype(np.float32)
    return Volume(data, np.eye(4) * [1.5, 1.5, 1.5, 1], ("A", "B")), reference


def _toy_probabilities(reference, blur=2.0):
    """Soft class probabilities that agree with the reference, unsure at its borders."""
    onehot = np.stack([(reference == v).astype(np.float32) for v in range(3)])
    soft = np.stack([ndi.gaussian_filter(c, blur) for c in onehot]) + 1e-3
    return soft / soft.sum(0)


def _engines(volume, reference):
    return {"random_walker": "random_walker",
            "model": ModelEngine(volume, _toy_probabilities(reference))}


def test_local_edit_changes_only_the_connected_region_in_the_click_direction():
    current = np.zeros((10, 10, 10), np.uint8)
    current[2:5, 2:5, 2:5] = 2
    answer = current.copy()
    answer[0:3, 0:3, 0:3] = 1  # touches the click, takes some of label 2
    answer[7:9, 7:9, 7:9] = 1  # far away: not the click's business
    answer[3, 3, 3] = 0  # a removal the positive click must not make
    after = local_edit(current, answer, 1, (1, 1, 1), positive=True)
    assert (after[0:3, 0:3, 0:3] == 1).all() and not (after[7:9, 7:9, 7:9] == 1).any()
    assert after[3, 3, 3] == 2
    protected = local_edit(current, answer, 1, (1, 1, 1), positive=True, protect=True)
    assert (protected[2, 2, 2] == 2) and protected[1, 1, 1] == 1  # label 2 keeps its voxels
    missed = local_edit(current, answer, 1, (5, 5, 5), positive=True)
    np.testing.assert_array_equal(missed, current)  # the click is not in the answer's change


@pytest.mark.parametrize("engine_name", ["random_walker", "model"])
def test_positive_click_changes_only_its_connected_region(engine_name):
    volume, reference = _toy_case()
    mask = reference.copy()
    mask[_ball((20, 20, 30), 2.5) & (reference == 2)] = 0  # a missed piece of oedema
    mask[_ball((20, 20, 8), 2.5) & (reference == 2)] = 0  # another one, far from the click
    session = InteractiveSession(volume, mask, label=2,
                                 engine=_engines(volume, reference)[engine_name])
    before = session.mask.copy()
    session.click((20, 20, 30), positive=True)
    changed = session.mask != before
    assert changed[20, 20, 30] and (session.mask[changed] == 2).all()
    labelled, count = ndi.label(changed, structure=np.ones((3, 3, 3)))
    assert count == 1  # one connected region, holding the click
    assert not changed[_ball((20, 20, 8), 3)].any()  # the far error is untouched
    assert (session.mask[reference == 1] == 1).all()  # the core keeps every voxel


@pytest.mark.parametrize("engine_name", ["random_walker", "model"])
def test_negative_click_in_the_core_gives_voxels_to_the_core_not_background(engine_name):
    volume, reference = _toy_case()
    mask = reference.copy()
    wrong = _ball((20, 20, 20), 3)
    mask[wrong] = 2  # oedema wrongly painted in the middle of the core
    session = InteractiveSession(volume, mask, label=2,
                                 engine=_engines(volume, reference)[engine_name])
    session.click((20, 20, 20), positive=False)
    removed = (mask == 2) & (session.mask != 2)
    assert removed.sum() >= 0.8 * wrong.sum()
    assert (session.mask[removed] == 1).all()  # no hole: the core takes them back
    assert ((session.mask == 2) == (reference == 2)).all() or \
        ((session.mask == 2) & (reference == 2)).sum() == (reference == 2).sum()


@pytest.mark.parametrize("engine_name", ["random_walker", "model"])
def test_protect_keeps_every_other_label(engine_name):
    volume, reference = _toy_case()
    mask = reference.copy()
    mask[reference == 2] = 0  # no oedema yet
    session = InteractiveSession(volume, mask, label=2, protect=True,
                                 engine=_engines(volume, reference)[engine_name])
    session.click((20, 20, 30), positive=True)
    np.testing.assert_array_equal(session.mask == 1, mask == 1)
    assert (session.mask == 2).sum() > 50


@pytest.mark.parametrize("engine_name", ["random_walker", "model"])
def test_robot_raises_dice_monotonically_on_a_two_label_case(engine_name):
    volume, reference = _toy_case(seed=1)
    mask = reference.copy()
    mask[_ball((20, 20, 31), 4) & (reference == 2)] = 0  # missed oedema
    mask[_ball((20, 31, 20), 3) & (reference == 0)] = 2  # extra oedema outside
    mask[_ball((20, 20, 14), 2)] = 2  # core painted as oedema
    session = InteractiveSession(volume, mask, label=2,
                                 engine=_engines(volume, reference)[engine_name])
    trial = robot_trial(session, reference == 2, min_clicks=4, cap=4, reference=reference,
                        values=[1, 2])
    edited = [step[1] for step in trial["label_dice"]]
    core = [step[0] for step in trial["label_dice"]]
    # monotone up to the bench's harm tolerance (a last click on a 1-voxel sliver at
    # Dice 0.999 may trade a few boundary voxels)
    assert all(b >= a - HARM_DICE for a, b in zip(edited, edited[1:])), edited
    assert all(b >= a - HARM_DICE for a, b in zip(core, core[1:])), core
    assert 1 - edited[-1] < 0.3 * (1 - edited[0]), edited  # most of the error is fixed


def test_first_click_adopts_the_models_object_and_undo_is_exact():
    volume, reference = _toy_case()
    probabilities = _toy_probabilities(reference)
    engine = ModelEngine(volume, probabilities)
    session = InteractiveSession(volume, None, label=1, engine=engine)
    session.click((20, 20, 20), positive=True)
    model_core = np.argmax(probabilities, axis=0) == 1
    assert label_dices(session.mask, model_core.astype(np.uint8), [1]) == [1.0]  # whole
    session.set_label(2)
    before = session.mask.copy()
    session.click((20, 20, 30), positive=True)
    np.testing.assert_array_equal(session.mask == 1, model_core)  # the core stays
    np.testing.assert_array_equal(session.undo(), before)


@pytest.mark.slow
def test_model_engine_computes_missing_probabilities_in_the_click_box(small_case,
                                                                    tiny_model_folder):
    # no probabilities: the model runs per box (a tiny real model keeps this test quick)
    engine = ModelEngine(small_case.volume, model=tiny_model_folder)
    labels = np.zeros(small_case.labels.data.shape, np.uint8)
    tumour = np.argwhere(small_case.labels.data == 2)[0]
    box, answer = engine.propose(labels, 2, [robot_click(small_case.labels.data == 2,
                                                         labels == 2)])
    assert engine._known[box].all() and not engine._known.all()
    assert answer.shape == labels[box].shape and tumour is not None


def test_bad_labels_and_click_files_leave_the_mask_unchanged(tmp_path):
    volume, reference = _toy_case()
    with pytest.raises(InputError, match="does not fit this uint8 mask"):
        InteractiveSession(volume, reference, label=256)
    session = InteractiveSession(volume, reference, label=1, engine="random_walker")
    with pytest.raises(InputError, match="does not fit"):
        session.set_label(300)
    np.testing.assert_array_equal(session.mask, reference)
    cases = {"sign.json": json.dumps([{"position": [1, 2, 3], "positive": "false"}]),
             "many.json": json.dumps([{"position": [1, 2, 3]}] * 10_001),
             "inf.json": '[{"position": [Infinity, 2, 3]}]',
             "digits.json": '[{"position": [' + "9" * 5000 + ', 2, 3]}]',
             "deep.json": "[" * 100_000 + "]" * 100_000}
    expected = {"sign.json": "positive must be true or false", "many.json": "more than",
                "inf.json": "malformed", "digits.json": "cannot be read",
                "deep.json": "cannot be read"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=expected[name]):
            read_clicks(tmp_path / name)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="not a text file"):
        read_clicks(tmp_path / "binary.json")
    with pytest.raises(InputError, match="no such file"):
        read_clicks(tmp_path / "missing.json")
    with pytest.raises(InputError, match="is a folder"):
        read_clicks(tmp_path)


def test_click_bump_gives_the_clicked_voxel_the_clicks_sign_and_fades_with_distance():
    from napari_medseg.interactive import Click
    from napari_medseg.interactive._bump import ClickBump

    volume, reference = _toy_case()
    log_p = np.log(_toy_probabilities(reference))
    bump = ClickBump(volume.data, volume.spacing)
    box = tuple(slice(0, n) for n in SHAPE)
    pushed = log_p.copy()
    assert bump.push(pushed, 1, Click((20, 20, 30), True), box)  # oedema voxel, clicked as core
    assert np.argmax(pushed[:, 20, 20, 30]) == 1
    raised = pushed[1] - log_p[1]  # less further away; none on background, which looks unlike
    assert raised[20, 20, 30] > raised[20, 20, 31] > raised[20, 20, 32] > 0 == raised[20, 20, 39]
    np.testing.assert_array_equal(pushed[[0, 2]], log_p[[0, 2]])  # only the clicked label
    again = pushed.copy()
    assert not bump.push(again, 1, Click((20, 20, 30), True), box)  # already has its sign
    np.testing.assert_array_equal(again, pushed)
    lowered = log_p.copy()
    assert bump.push(lowered, 1, Click((20, 20, 20), False), box)  # the core's centre: not core
    assert np.argmax(lowered[:, 20, 20, 20]) != 1
