"""The learned click engine: DeepEdit's network from the segmentation model's weights."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_medseg.errors import InputError
from napari_medseg.interactive import InteractiveSession, dice_score, robot_trial
from napari_medseg.interactive._geometry import NetworkGrid
from napari_medseg.interactive._learned import LearnedEngine
from napari_medseg.interactive._robot import HARM_DICE, harm_figures
from napari_medseg.interactive._simulate import training_sample
from napari_medseg.io import Volume

LABELS = (1, 2, 3)


def _ball(shape, centre, radius):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2


@pytest.fixture(scope="module")
def sample_and_prediction():
    """The sample case and the built-in segmentation model's prediction of it (its first
    fold: a third of the ensemble's time, errors of the same kind)."""
    from napari_medseg.inference import predict
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.sample import load_sample_case

    case = load_sample_case()
    prediction = run_to_end(predict(load_model(folds=[0]), case.volume, device="cpu",
                                    keep_probabilities=False))
    return case, prediction.labels.astype(np.uint8)


def test_training_samples_encode_the_mask_and_one_labels_clicks():
    rng = np.random.default_rng(0)
    shape = (48, 48, 48)
    reference = np.zeros(shape, np.uint8)
    reference[_ball(shape, (24, 24, 24), 12)] = 2
    reference[_ball(shape, (24, 24, 24), 5)] = 1
    predicted = reference.copy()
    predicted[_ball(shape, (24, 24, 34), 4) & (reference == 2)] = 0  # a bite of oedema missed
    image = rng.normal(size=(4, *shape)).astype(np.float32)
    answers = []

    def answer(x):  # a network that calls everything background
        answers.append(x.shape)
        return np.zeros(x.shape[1:], np.int64)

    for _ in range(8):
        x, y = training_sample(image, reference, predicted, rng, (32, 32, 32), 3, answer)
        assert x.shape == (13, 32, 32, 32) and y.shape == (32, 32, 32)
        assert set(np.unique(y)) <= {0, 1, 2}
        assert (x[4:7].sum(0) <= 1).all()  # one-hot current mask
        guided = [v for v in range(3) if x[7 + v].any() or x[10 + v].any()]
        assert len(guided) == 1 and x[7:].max() == pytest.approx(1.0, abs=1e-6)
    assert answers and all(s == (13, 32, 32, 32) for s in answers)  # rounds ran the network


def test_grid_maps_the_case_onto_the_network_spacing_and_back():
    from napari_medseg.inference import model_grid_shape

    network_shape = model_grid_shape((60, 90, 30), (1.0, 1.0, 3.0), (1.5, 1.5, 1.5))
    grid = NetworkGrid((60, 90, 30), network_shape)
    assert grid.network_shape == (40, 60, 60)
    box = (slice(10, 30), slice(0, 60), slice(5, 25))
    case_box, back = grid.case_box(box)
    labels = np.arange(np.prod(grid.shape)).reshape(grid.shape)
    on_network = labels[grid.sampled(box)]
    # every case voxel of the box maps to a network voxel that sampled a case voxel nearby
    recovered = on_network[back]
    assert recovered.shape == tuple(s.stop - s.start for s in case_box)
    z, y, x = np.unravel_index(recovered, grid.shape)
    grids = np.ogrid[case_box]
    assert np.abs(z - grids[0]).max() <= 1 and np.abs(y - grids[1]).max() <= 1
    assert np.abs(x - grids[2]).max() == 0  # 3 mm -> 1.5 mm: two network voxels per case one
    assert NetworkGrid((10, 10, 10), (10, 10, 10)).same


def test_learned_engine_refuses_a_model_that_is_not_a_click_network(small_case):
    with pytest.raises(InputError, match="not a click network"):
        LearnedEngine(small_case.volume, "brats_unet")


def test_learned_clicks_fix_the_models_mask_and_leave_other_labels(sample_and_prediction):
    case, predicted = sample_and_prediction
    reference = case.labels.data
    engine = LearnedEngine(case.volume, device="cpu")
    gains = []
    for value in LABELS:
        session = InteractiveSession(case.volume, predicted, label=value, engine=engine)
        trial = robot_trial(session, reference == value, min_clicks=3, cap=3,
                            reference=reference, values=LABELS)
        figures = harm_figures(trial["label_dice"], LABELS.index(value))
        assert figures["worst_other_change"] >= -2 * HARM_DICE, (value, figures)
        assert trial["dice"][3] >= trial["dice"][0] - HARM_DICE, (value, trial["dice"])
        gains.append(trial["dice"][3] - trial["dice"][0])
    assert sum(gains) > 0, gains


def test_the_click_network_in_bf16_edits_as_in_float32(sample_and_prediction):
    """The dock runs the click network in the model run's precision (bf16 on a CPU with
    native bf16, about 2.2x faster a click there): the same clicks on the model's mask
    change the same voxels as in float32, up to a few at the edit's rim."""
    from napari_medseg.interactive import robot_click
    from napari_medseg.models.device import cpu_has_native_bf16

    case, predicted = sample_and_prediction
    reference = case.labels.data
    engines = {precision: LearnedEngine(case.volume, device="cpu", precision=precision)
               for precision in ("float32", "bfloat16")}
    assert all(precision in engine.description for precision, engine in engines.items())
    # a CPU without native bf16 emulates it, about 30x slower than float32 (the product's
    # auto never picks it there): one label's click keeps the suite's time
    for value in LABELS if cpu_has_native_bf16() else LABELS[:1]:
        click = robot_click(reference == value, predicted == value, case.volume.spacing)
        masks = {}
        for precision, engine in engines.items():
            session = InteractiveSession(case.volume, predicted, label=value, engine=engine)
            session.click(click.position, click.positive)
            masks[precision] = session.mask
        changed = (masks["float32"] != predicted) | (masks["bfloat16"] != predicted)
        assert changed.sum() > 0, value
        agree = float((masks["float32"] == masks["bfloat16"])[changed].mean())
        assert agree >= 0.95, (value, agree, int(changed.sum()))


def _at_one_mm(case, predicted):
    """The sample (1.5 mm, the network's spacing) at 1 mm as BraTS: its volume, the
    reference, and the prediction as a model run's labels come back."""
    zoom = 1.5
    volume = Volume(np.stack([ndi.zoom(channel, zoom, order=1) for channel in case.volume.data]),
                    np.diag([s / zoom for s in case.volume.spacing] + [1.0]),
                    case.volume.channel_names)
    return (volume, ndi.zoom(case.labels.data, zoom, order=0),
            ndi.zoom(predicted, zoom, order=0))


def test_on_a_grid_that_is_not_the_networks_clicks_change_only_what_the_network_changed(
        sample_and_prediction):
    """A 1 mm copy of the sample (BraTS's grid; the network's is 1.5 mm): the way from
    the network's grid back to the case's does not return the mask's boundaries, and
    the answer's difference along them must not become an edit. Every label's Dice is
    followed: no click may cost another label more than 0.002 or hurt its own."""
    case, predicted = sample_and_prediction
    volume, reference, mask = _at_one_mm(case, predicted)
    engine = LearnedEngine(volume, device="cpu")
    assert not engine.grid.same
    gains = []
    for value in LABELS:
        session = InteractiveSession(volume, mask, label=value, engine=engine)
        trial = robot_trial(session, reference == value, min_clicks=3, cap=3,
                            reference=reference, values=LABELS)
        figures = harm_figures(trial["label_dice"], LABELS.index(value))
        assert figures["harmful_clicks"] == 0, (value, figures)
        assert figures["worst_other_change"] >= -0.002, (value, figures)
        gains.append(trial["dice"][3] - trial["dice"][0])
    assert sum(gains) > 0, gains


def _deepest(mask):
    depth = ndi.distance_transform_edt(mask)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(depth)), mask.shape))


def _around_tumour(case, side=64):
    """The sample case cropped to a cube around its tumour."""
    centre = np.argwhere(case.labels.data > 0).mean(0).astype(int)
    box = tuple(slice(max(c - side // 2, 0), max(c - side // 2, 0) + side) for c in centre)
    spacing = case.volume.spacing
    volume = Volume(case.volume.data[(slice(None), *box)], np.diag([*spacing, 1.0]),
                    case.volume.channel_names)
    return volume, case.labels.data[box]


def test_first_click_on_an_empty_label_finds_it_on_the_cases_grid_and_a_finer_one(
        sample_and_prediction):
    case, _ = sample_and_prediction
    volume, reference = _around_tumour(case)
    fine = Volume(np.repeat(np.repeat(np.repeat(volume.data, 2, 1), 2, 2), 2, 3),
                  np.diag([s / 2 for s in volume.spacing] + [1.0]), volume.channel_names)
    fine_reference = np.repeat(np.repeat(np.repeat(reference, 2, 0), 2, 1), 2, 2)
    scores = []
    for grid_volume, grid_reference in ((volume, reference), (fine, fine_reference)):
        mask = grid_reference.copy()
        mask[mask == 2] = 0  # oedema not drawn yet
        session = InteractiveSession(grid_volume, mask, label=2,
                                     engine=LearnedEngine(grid_volume, device="cpu"))
        session.click(_deepest(grid_reference == 2), positive=True)
        for other in (1, 3):  # the core and the enhancing rim stay as they were drawn
            assert dice_score(session.mask == other, mask == other) >= 0.97
        scores.append(dice_score(session.mask == 2, grid_reference == 2))
    assert min(scores) >= 0.7 and abs(scores[0] - scores[1]) < 0.1, scores


def test_a_positive_click_takes_no_voxel_the_segmentation_model_is_sure_is_background(
        sample_and_prediction):
    case, _ = sample_and_prediction
    volume, reference = _around_tumour(case)
    mask = reference.copy()
    mask[mask == 2] = 0  # oedema not drawn yet: the click network adds a large object
    click = _deepest(reference == 2)
    plausible = _ball(mask.shape, click, 6)  # the model allows tumour only near the click
    prior = np.zeros((4, *mask.shape), np.float32)
    prior[2][plausible] = 0.3  # unsure, not ruled out
    prior[0] = 1.0 - prior[2]
    background_everywhere = np.zeros_like(prior)
    background_everywhere[0] = 1.0
    sure_away_from_the_click = prior.copy()  # ruled out at the click, surer elsewhere
    sure_away_from_the_click[2] = np.where(plausible, 0.04, 0.001)
    sure_away_from_the_click[0] = 1.0 - sure_away_from_the_click[2]
    added = {}
    for name, given in (("no prior", None), ("prior", prior),
                        ("click ruled out", background_everywhere),
                        ("surer away from the click", sure_away_from_the_click)):
        session = InteractiveSession(volume, mask, label=2,
                                     engine=LearnedEngine(volume, device="cpu", prior=given))
        session.click(click, positive=True)
        added[name] = (session.mask == 2) & (mask != 2)
    assert (added["no prior"] & ~plausible).sum() > 1000  # the network's object is large
    assert added["prior"].any() and not (added["prior"] & ~plausible).any()
    assert (added["prior"] <= added["no prior"]).all()
    # on a voxel the model rules out, the user's click overrules the model there and
    # wherever it is about as unsure, not where it is surer than at the click
    assert np.array_equal(added["click ruled out"], added["no prior"])
    ours = added["surer away from the click"]
    assert ours[click] and not (ours & ~plausible).any()
    assert np.array_equal(ours, added["prior"])


def test_learned_engine_takes_auto_for_its_device(small_case):
    from napari_medseg.models import choose_device

    engine = LearnedEngine(small_case.volume, device="auto")  # a traceback before
    assert engine.device == choose_device("auto")


def test_auto_takes_the_click_network_only_for_a_model_with_its_labels(
        sample_and_prediction, tmp_path):
    import dataclasses
    import json

    from napari_medseg.interactive import make_engine
    from napari_medseg.interactive._session import click_network_fits
    from tests.conftest import make_model_folder

    case, predicted = sample_and_prediction
    probabilities = np.eye(4, dtype=np.float32)[predicted].transpose(3, 0, 1, 2)
    no_run = make_engine("auto", case.volume)  # a review case, a mask from a file
    assert no_run.name == "learned" and no_run.prior is None
    with_run = make_engine("auto", case.volume, probabilities=probabilities)
    assert with_run.name == "learned" and with_run.prior is probabilities
    other = make_model_folder(tmp_path / "other", n_folds=1)  # the same labels: it fits
    assert click_network_fits(case.volume.channel_names, other)
    spec = json.loads((other / "model.json").read_bytes())
    spec["labels"][1]["name"] = "oedema and infiltration"
    (other / "model.json").write_text(json.dumps(spec), encoding="utf-8")
    assert not click_network_fits(case.volume.channel_names, other)
    engine = make_engine("auto", case.volume, probabilities=probabilities,
                         segmentation_model=other)
    assert engine.name == "model"
    assert make_engine("auto", case.volume, segmentation_model=other).name == "random_walker"
    t1_only = dataclasses.replace(case.volume, data=case.volume.data[:1],
                                  channel_names=case.volume.channel_names[:1])
    assert not click_network_fits(t1_only.channel_names)  # the network's contrasts are missing


def test_second_opinion_finds_the_models_errors_on_the_cases_grid_and_a_finer_one(
        sample_and_prediction):
    """The click network without a click, on the model's mask: where it disagrees is
    mostly where the model is wrong; on a twice finer copy of the case (resampled to
    the network's grid and back) it says the same, voxel for voxel of the coarse grid."""
    case, predicted = sample_and_prediction
    reference = case.labels.data
    from napari_medseg.progress import run_to_end

    steps = []
    opinion = run_to_end(LearnedEngine(case.volume, device="cpu").second_opinion(predicted),
                         steps.append)
    assert len(steps) > 1 and steps[-1].done == steps[-1].total  # progress per patch
    assert opinion.shape == (4, *predicted.shape)
    np.testing.assert_allclose(opinion.sum(0), 1.0, atol=1e-5)
    changed = opinion.argmax(0) != predicted
    wrong = predicted != reference
    assert (changed & wrong).sum() >= 0.8 * changed.sum()  # its changes are mostly fixes
    assert (changed & wrong).sum() >= 0.8 * wrong.sum()  # and find most errors
    far = ndi.distance_transform_edt(predicted == 0) > 30
    assert (opinion.argmax(0)[far] == 0).all()  # away from the objects: the mask itself
    fine_volume = Volume(np.repeat(np.repeat(np.repeat(case.volume.data, 2, 1), 2, 2), 2, 3),
                         np.diag([s / 2 for s in case.volume.spacing] + [1.0]),
                         case.volume.channel_names)
    fine = np.repeat(np.repeat(np.repeat(predicted, 2, 0), 2, 1), 2, 2)
    fine_opinion = run_to_end(LearnedEngine(fine_volume, device="cpu").second_opinion(fine))
    assert fine_opinion.shape == (4, *fine.shape)
    agree = fine_opinion.argmax(0)[::2, ::2, ::2] == opinion.argmax(0)
    assert agree.mean() > 0.99


def test_second_opinion_on_a_grid_that_is_not_the_networks_flags_changes_not_resampling(
        sample_and_prediction):
    """On a 1 mm copy of the sample, the way back from the network's 1.5 mm grid does
    not return the mask's boundaries; the opinion disagrees with the mask where the
    network changed a label, not along every boundary."""
    from napari_medseg.progress import run_to_end

    case, predicted = sample_and_prediction
    volume, reference, mask = _at_one_mm(case, predicted)
    opinion = run_to_end(LearnedEngine(volume, device="cpu").second_opinion(mask))
    np.testing.assert_allclose(opinion.sum(0), 1.0, atol=1e-5)
    changed = opinion.argmax(0) != mask
    wrong = mask != reference
    assert (changed & wrong).sum() >= 0.6 * changed.sum()  # without: 0.41
    assert (changed & wrong).sum() >= 0.4 * wrong.sum()  # sheets finer than 1.5 mm stay


def test_suggestion_map_falls_back_to_the_given_probabilities_and_refuses_without(
        sample_and_prediction, tmp_path):
    import json

    from napari_medseg.interactive import suggestion_map
    from napari_medseg.progress import run_to_end
    from tests.conftest import make_model_folder

    case, predicted = sample_and_prediction
    other = make_model_folder(tmp_path / "other", n_folds=1)
    spec = json.loads((other / "model.json").read_bytes())
    spec["labels"][0]["name"] = "necrosis"  # labels the click network does not know
    (other / "model.json").write_text(json.dumps(spec), encoding="utf-8")
    given = np.eye(4, dtype=np.float32)[predicted].transpose(3, 0, 1, 2)
    error_map, source = run_to_end(suggestion_map(case.volume, predicted, given, other))
    assert source == "uncertainty maps" and error_map is given
    with pytest.raises(InputError, match="estimate uncertainty first"):
        run_to_end(suggestion_map(case.volume, predicted, None, other))
