"""A click changes only what it is about: local, multi-label aware, for every engine."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_medseg.errors import InputError
from napari_medseg.interactive import InteractiveSession, read_clicks, robot_click, robot_trial
from napari_medseg.interactive._clicks import Click
from napari_medseg.interactive._edit import local_edit, within_voxel
from napari_medseg.interactive._model_engine import ModelEngine
from napari_medseg.interactive._robot import HARM_DICE, label_dices
from napari_medseg.io import Volume

SHAPE = (40, 40, 40)
NODULE = (20, 20, 36)  # two voxels clear of the oedema ball (radius 12 around x = 20)


def _ball(centre, radius, shape=SHAPE):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2


def _toy_case(seed=0, nodule=False):
    """Two labels: a core (1) inside oedema (2); two contrasts that tell them apart.
    With ``nodule``, a separate small oedema object next to it."""
    rng = np.random.default_rng(seed)
    reference = np.zeros(SHAPE, np.uint8)
    reference[_ball((20, 20, 20), 12)] = 2
    reference[_ball((20, 20, 20), 6)] = 1
    if nodule:
        reference[_ball(NODULE, 1.5)] = 2
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


def _rim_case():
    """A ring of label 3 (z = 4) with two gaps the mask calls 2: the click is in one."""
    current = np.zeros((9, 20, 20), np.uint8)
    ring = np.zeros_like(current, bool)
    ring[4, 4:16, 4:16] = True
    ring[4, 6:14, 6:14] = False
    current[ring] = 3
    current[4, 4:6, 9:11] = 2  # gap at the click
    current[4, 14:16, 9:11] = 2  # gap across the ring: further along the object
    answer = current.copy()
    answer[ring] = 3
    return current, answer


def test_a_positive_click_fixes_the_same_confusion_further_along_the_answers_object():
    current, answer = _rim_case()
    after = local_edit(current, answer, 3, (4, 4, 9), positive=True, along_object=True)
    assert (after[4, 4:6, 9:11] == 3).all() and (after[4, 14:16, 9:11] == 3).all()
    strict = local_edit(current, answer, 3, (4, 4, 9), positive=True)  # engines blind to it
    assert (strict[4, 4:6, 9:11] == 3).all() and (strict[4, 14:16, 9:11] == 2).all()
    # a label the click's own change did not take is not taken further along
    other = current.copy()
    other[4, 14:16, 9:11] = 1
    after = local_edit(other, np.where(other == 1, 3, answer), 3, (4, 4, 9), positive=True,
                       along_object=True)
    assert (after[4, 4:6, 9:11] == 3).all() and (after[4, 14:16, 9:11] == 1).all()
    # what an earlier click set stays; a stretch cut by an open face of the box stays
    held = np.zeros_like(current, bool)
    held[4, 14:16, 9:11] = True
    after = local_edit(current, answer, 3, (4, 4, 9), positive=True, along_object=True,
                       held=held)
    assert (after[4, 4:6, 9:11] == 3).all() and (after[4, 14:16, 9:11] == 2).all()
    face = np.zeros_like(current, bool)
    face[:, -5:] = True  # pretend the box ends just past the far gap
    after = local_edit(current, answer, 3, (4, 4, 9), positive=True, along_object=True,
                       open_face=face)
    assert (after[4, 14:16, 9:11] == 2).all()
    # a negative click removes only what is connected to it through its own change
    whole = answer.copy()
    after = local_edit(whole, current, 3, (4, 4, 9), positive=False, along_object=True)
    assert (after[4, 4:6, 9:11] == 2).all() and (after[4, 14:16, 9:11] == 3).all()


def test_on_a_resampled_grid_a_click_at_the_labels_boundary_takes_no_confusion_further():
    """On a grid the engine resamples (a 1.5 mm network on a 1 mm case), a click within one
    engine voxel of its label marks a boundary finer than the engine sees: the engine's
    redrawing of the label's boundaries further along is resampling, and the click takes
    only background there. A click deep in a wide confusion still fixes it further along."""
    current, answer = _rim_case()
    current[4, 8:10, 6] = 2  # the answer redraws the ring's inner boundary over label 2
    answer[4, 8:10, 6] = 3  # (a sliver of the confused label, away from the click)
    answer[4, 8:10, 3] = 3  # and its outer boundary over background
    on_own_grid = local_edit(current, answer, 3, (4, 4, 9), positive=True, along_object=True)
    assert (on_own_grid[4, 14:16, 9:11] == 3).all() and (on_own_grid[4, 8:10, 6] == 3).all()
    resampled = local_edit(current, answer, 3, (4, 4, 9), positive=True, along_object=True,
                           engine_voxel=(1.5, 1.5, 1.5))
    assert (resampled[4, 4:6, 9:11] == 3).all()  # the click's own change
    assert (resampled[4, 14:16, 9:11] == 2).all()  # no confusion taken further along
    assert (resampled[4, 8:10, 6] == 2).all()  # the other label's sliver stays
    assert (resampled[4, 8:10, 3] == 3).all()  # background further along is taken
    # a click four voxels from the label: an error the engine resolves
    wide_current, wide_answer = _rim_case()
    wide_current[4, 4:6, 6:14] = 2
    far = local_edit(wide_current, wide_answer, 3, (4, 4, 10), positive=True,
                     along_object=True, engine_voxel=(1.5, 1.5, 1.5))
    assert (far[4, 4:6, 6:14] == 3).all() and (far[4, 14:16, 9:11] == 3).all()
    # across 4 mm slices (0.37 of a 1.5 mm voxel), only the click's own slice is near
    ring = wide_current == 3
    assert not within_voxel(ring, (4, 4, 10), (0.37, 1.5, 1.5))
    assert within_voxel(ring, (4, 4, 6), (0.37, 1.5, 1.5))
    assert not within_voxel(ring, (3, 4, 4), (0.37, 1.5, 1.5))
    assert within_voxel(ring, (3, 4, 4), (1.0, 1.0, 1.0))
    assert within_voxel(ring, (0, 0, 0), (7.0, 7.0, 7.0)) and not within_voxel(
        ring, (0, 0, 0), (1.5, 1.5, 1.5))  # at the array's corner


class _FixedAnswers:
    """An engine that answers a positive click with ``positive`` and a negative one with
    ``negative`` over the whole volume (the session's rule is what is tested)."""

    name = "fixed"

    def follows_object(self, label):
        return True  # as the click network, which sees the mask

    def __init__(self, positive, negative):
        self.answers = {True: positive, False: negative}

    def propose(self, labels, label, clicks):
        return tuple(slice(0, n) for n in labels.shape), self.answers[clicks[-1].positive]


def test_a_later_click_does_not_undo_an_earlier_click_further_along_the_object():
    current, answer = _rim_case()
    start = np.where(current == 2, 3, current).astype(np.uint8)
    start[4, 4:6, 9:11] = 2  # only the gap at the second click is missing
    volume = Volume(np.ones((1, *start.shape), np.float32), np.eye(4), ("A",))
    session = InteractiveSession(volume, start, label=3, engine=_FixedAnswers(answer, current))
    session.click((4, 15, 9), positive=False)  # the user takes the far stretch out of 3
    assert (session.mask[4, 14:16, 9:11] == 2).all()
    between = session.mask.copy()
    session.click((4, 4, 9), positive=True)  # the answer wants the whole ring back
    assert (session.mask[4, 4:6, 9:11] == 3).all()
    assert (session.mask[4, 14:16, 9:11] == 2).all()  # the earlier click's voxels stay
    session.undo()
    session.undo()
    np.testing.assert_array_equal(session.mask, start)
    # the same mask without the click that made it: the whole ring comes back
    fresh = InteractiveSession(volume, between, label=3, engine=_FixedAnswers(answer, current))
    fresh.click((4, 4, 9), positive=True)
    np.testing.assert_array_equal(fresh.mask == 3, answer == 3)


@pytest.mark.parametrize("engine_name", ["random_walker", "model"])
def test_positive_click_changes_only_its_connected_region(engine_name):
    volume, reference = _toy_case(nodule=True)
    mask = reference.copy()
    mask[_ball((20, 20, 29), 2.5) & (reference == 2)] = 0  # a missed piece of oedema
    mask[_ball(NODULE, 1.5)] = 0  # the nodule, missed too: another object
    engine = {"random_walker": "random_walker",  # sharp: the model's answer has the nodule
              "model": ModelEngine(volume, _toy_probabilities(reference, blur=0.7))}
    session = InteractiveSession(volume, mask, label=2, engine=engine[engine_name])
    if engine_name == "model":
        box, answer = session.engine.propose(session.mask, 2, [Click((20, 20, 30), True)])
        claimed = np.zeros_like(mask)
        claimed[box] = answer
        assert (claimed[_ball(NODULE, 1.5)] == 2).any()
    before = session.mask.copy()
    session.click((20, 20, 30), positive=True)
    changed = session.mask != before
    assert changed[20, 20, 30] and (session.mask[changed] == 2).all()
    labelled, count = ndi.label(changed, structure=np.ones((3, 3, 3)))
    assert count == 1  # one connected region, holding the click (these engines do not see
    # the mask, so they do not follow the object further)
    assert not changed[_ball(NODULE, 2.5)].any()  # the other object is untouched
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
        (tmp_path / name).write_text(text, encoding="utf-8")
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


def test_click_bump_on_a_thin_rim_follows_the_rim_not_the_tissue_around_it():
    """A click on a one-voxel rim: the bump reads the rim's own intensity, so it reaches
    along the rim and not into the different-looking tissue around it."""
    from napari_medseg.interactive import Click
    from napari_medseg.interactive._bump import ClickBump

    rng = np.random.default_rng(0)
    shape = (21, 21, 21)
    image = np.full((2, *shape), 1.0, np.float32)  # surrounding tissue
    image[:, :, 10, :] = 2.0  # a rim one voxel thick, in the plane y = 10
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    image[:, 0, 0, 0] = 0.1  # the 5-95 % spread stays that of tissue and rim
    bump = ClickBump(image, (1.0, 1.0, 1.0))
    click = Click((10, 10, 10), True)
    standardised = bump.standardised()
    rim, tissue = standardised[:, :, 10].mean((1, 2)), standardised[:, :, 5].mean((1, 2))
    reference = bump.reference(click.position)  # the rim's own intensity, not the tissue's
    assert np.abs(reference - rim).max() < 0.05 * np.abs(rim - tissue).min()
    kernel = bump.kernel(tuple(slice(0, n) for n in shape), click)
    along, beside = kernel[10, 10, 13], kernel[10, 9, 10]  # 3 mm along the rim, 1 mm off it
    assert along > 0.5 and beside < 0.01
