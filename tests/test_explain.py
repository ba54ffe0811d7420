"""Shapley contrast attributions: captum equality, axioms, rankings, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import ShapleyValues

from napari_medseg.errors import InputError
from napari_medseg.explain import (
    coalition_masks, coalition_probabilities, exact_shapley, explain_case,
    normalised_footrule_similarity, permutation_shapley, rank_variance, ranks_from_phi,
    validate_ranking)
from napari_medseg.io import Volume
from napari_medseg.models import load_model
from napari_medseg.models.loading import LoadedModel
from napari_medseg.progress import run_to_end


def _toy_network(seed=0, channels=4):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv3d(channels, 6, 3, padding=1), torch.nn.Tanh(),
                               torch.nn.Conv3d(6, 4, 3, padding=1)).eval()


def test_equals_captum_shapley_values():
    network = _toy_network()
    torch.manual_seed(1)
    image = torch.randn(4, 8, 8, 8)
    baseline = torch.zeros_like(image)
    reference = torch.randint(0, 4, (8, 8, 8))

    def value(probabilities):  # per coalition: mean p(label 2) + soft Dice of label 1
        p1 = probabilities[:, 1]
        truth = (reference == 1).float()
        soft_dice = 2 * (p1 * truth).sum((1, 2, 3)) / (p1.sum((1, 2, 3)) + truth.sum() + 1e-6)
        return probabilities[:, 2].mean((1, 2, 3)) + soft_dice

    masks = coalition_masks(4)
    probabilities = run_to_end(coalition_probabilities(network, image, baseline, masks,
                                                       (8, 8, 8), 4))
    ours = exact_shapley(value(probabilities).double().numpy())

    forward = lambda x: value(network(x).softmax(1))  # noqa: E731
    feature_mask = torch.arange(4).reshape(1, 4, 1, 1, 1).expand(1, 4, 8, 8, 8).contiguous()
    with torch.no_grad():
        theirs = ShapleyValues(forward).attribute(image[None], baselines=baseline[None],
                                                  feature_mask=feature_mask)
    theirs = theirs[0, :, 0, 0, 0].double().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_axioms_on_constructed_games():
    masks = coalition_masks(3)
    # symmetric players 0 and 1, player 2 is null: v = min(x0 + x1, 1.5) * 2
    values = np.array([min(m[0] + m[1], 1.5) * 2.0 for m in masks])
    phi = exact_shapley(values)
    assert phi[0] == pytest.approx(phi[1]) and phi[2] == pytest.approx(0.0)
    assert phi.sum() == pytest.approx(values[-1] - values[0])
    # efficiency on a random game, also elementwise for maps
    random_values = np.random.default_rng(0).normal(size=(16, 5, 6))
    phi_maps = exact_shapley(random_values)
    np.testing.assert_allclose(phi_maps.sum(0), random_values[-1] - random_values[0], atol=1e-12)


def test_permutation_sampling_converges_and_caches():
    rng = np.random.default_rng(3)
    n = 8
    table = rng.normal(size=2**n)
    calls = []

    def value_of(code):
        calls.append(code)
        return table[code]

    phi, error = permutation_shapley(value_of, n, n_permutations=400, seed=1)
    exact = exact_shapley(table)
    assert np.all(np.abs(phi - exact) < 5 * error + 1e-9)
    assert len(calls) == len(set(calls)) <= 2**n


class _IgnoresT2(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _toy_network(seed=5)

    def forward(self, x):
        x = x.clone()
        x[:, 2] = 0.0
        return self.inner(x) * 4


def test_coalitions_sharing_an_input_run_once_and_equal_each_coalition_run_alone():
    from napari_medseg.inference import sliding_window

    network = _toy_network(seed=3)
    samples_run = []

    def counted(batch):
        samples_run.append(batch.shape[0])
        return network(batch)

    torch.manual_seed(2)
    image = torch.randn(4, 16, 16, 24)
    image[2, :, :, 12:] = 0  # T2 absent from the windows on the right: it cannot matter there
    image[:, :, :, 16:] = 0  # air: every contrast is zero
    baseline = torch.zeros_like(image)
    masks = coalition_masks(4)
    shared = run_to_end(coalition_probabilities(counted, image, baseline, masks, (8, 8, 8), 4))
    for coalition, keep in zip(shared, masks):
        chosen = torch.where(torch.as_tensor(keep)[:, None, None, None], image, baseline)
        with torch.no_grad():
            alone = run_to_end(sliding_window(lambda x: network(x).softmax(1), chosen,
                                              (8, 8, 8), 4, reuse_blank=False))
        torch.testing.assert_close(coalition, alone, atol=1e-5, rtol=1e-5)
    # 3 x 3 x 5 windows (x starts 0, 4, 8, 12, 16), naively 16 inputs each: 15 and the
    # shared blank where T2 is present (x < 16), 7 where it is not (x 12-20), and the air
    # (x 16-24) is the blank again: run once in all
    assert sum(samples_run) == 27 * 15 + 9 * 7 + 1


def test_explain_case_efficiency_null_player_and_folds(coarse_model_folder, small_case):
    spec_model = load_model(coarse_model_folder)
    model = LoadedModel(spec_model.spec, coarse_model_folder, (_IgnoresT2(), _IgnoresT2()))
    result = run_to_end(explain_case(model, small_case.volume, small_case.labels.data))
    assert set(result.targets) == {"NCR", "ED", "ET", "WT", "TC"}
    assert result.value == "dice_vs_reference"
    for target in result.targets.values():
        assert target.phi.sum() == pytest.approx(target.value_all - target.value_empty, abs=1e-9)
        assert target.phi[2] == pytest.approx(0.0, abs=1e-12)  # T2 is a null player
        assert np.abs(target.maps[2]).max() < 1e-5
        assert target.maps.shape == (4, *small_case.volume.shape)
        assert target.rank_variance == pytest.approx(0.0)  # identical folds
    as_json = result.to_dict()
    assert set(as_json["targets"]["ED"]["phi"]) == {"T1", "T1ce", "T2", "FLAIR"}


@pytest.mark.parametrize("precision", ["auto", "float32"])  # auto: bf16 on a native-bf16 CPU
def test_maps_sum_to_foreground_probability_change(coarse_model_folder, small_case, precision):
    from napari_medseg.inference import predict

    model = load_model(coarse_model_folder)
    result = run_to_end(explain_case(model, small_case.volume, reference=None,
                                     precision=precision))
    assert result.value == "dice_vs_full_prediction"
    assert result.targets["WT"].value_all == pytest.approx(1.0)
    # efficiency per voxel: the maps sum to p_all - p_empty, where p_all is the
    # ordinary prediction (in the same arithmetic: the prediction explained) and
    # p_empty the prediction with every contrast at the 'zero' baseline (an all-zero
    # case normalises to zeros)
    volume = small_case.volume
    full = run_to_end(predict(model, volume, device="cpu", precision=precision))
    assert result.model["precision"] == full.precision
    blank = Volume(np.zeros_like(volume.data), volume.affine, volume.channel_names)
    empty = run_to_end(predict(model, blank, device="cpu", precision=precision)).probabilities
    wt_maps = result.targets["WT"].maps
    assert wt_maps.dtype == np.float32
    # kept on the model's 6 mm grid (an eighth of the 3 mm case's voxels), read resampled
    kept = result.targets["WT"].voxel_maps.on_grid
    assert kept.nbytes < wt_maps.nbytes / 7 and kept.shape[0] == wt_maps.shape[0] == 4
    np.testing.assert_allclose(wt_maps.sum(0), full.probabilities[1:].sum(0)
                               - empty[1:].sum(0), atol=1e-4)


def test_rankings_nsf_and_variance():
    assert list(ranks_from_phi([0.1, 0.4, 0.2, 0.3])) == [4, 1, 3, 2]
    assert list(ranks_from_phi([0.2, 0.2, 0.1, 0.5])) == [2.5, 2.5, 4, 1]
    assert normalised_footrule_similarity([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert normalised_footrule_similarity([1, 2, 3, 4], [4, 3, 2, 1]) == 0.0
    assert normalised_footrule_similarity([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(0.75)
    assert rank_variance(np.array([[1, 2, 3, 4]] * 3)) == 0.0
    assert rank_variance(np.array([[1, 2, 3, 4], [2, 1, 3, 4]])) == pytest.approx(0.25)


def test_bad_input_is_refused(coarse_model_folder, small_case):
    contrasts = ("T1", "T1ce", "T2", "FLAIR")
    with pytest.raises(InputError, match="not a permutation"):
        validate_ranking({"T1": 1, "T1ce": 1, "T2": 3, "FLAIR": 4}, contrasts, "ED")
    with pytest.raises(InputError, match="must rank exactly"):
        validate_ranking({"T1": 1, "T2": 2}, contrasts, "ED")
    model = load_model(coarse_model_folder)
    bad_reference = small_case.labels.data.copy()
    bad_reference[0, 0, 0] = 7
    with pytest.raises(InputError, match=r"labels \[7\]"):
        run_to_end(explain_case(model, small_case.volume, bad_reference))
    three = Volume(small_case.volume.data[:3], small_case.volume.affine, contrasts[:3])
    with pytest.raises(InputError, match="lacks FLAIR"):
        run_to_end(explain_case(model, three))
    with pytest.raises(InputError, match="unknown baseline"):
        run_to_end(explain_case(model, small_case.volume, baseline="noise"))


def test_many_contrasts_use_permutation_sampling(coarse_model_folder, small_case, monkeypatch):
    from napari_medseg.explain import _explain

    model = load_model(coarse_model_folder)
    exact = run_to_end(explain_case(model, small_case.volume, small_case.labels.data,
                                    maps=False))
    monkeypatch.setattr(_explain, "EXACT_LIMIT", 3)  # as if the model had many contrasts
    sampled = run_to_end(explain_case(model, small_case.volume, small_case.labels.data,
                                      permutations=12))
    assert sampled.model["method"] == "permutation sampling"
    for name, target in sampled.targets.items():
        reference = exact.targets[name]
        assert target.maps is None and target.standard_error is not None
        assert target.phi.sum() == pytest.approx(target.value_all - target.value_empty, abs=1e-9)
        assert np.all(np.abs(target.phi - reference.phi) <= 4 * target.standard_error + 1e-6)
    assert "phi_standard_error" in sampled.to_dict()["targets"]["WT"]


class _BrightIsTumour(torch.nn.Module):
    """A fixed convolutional 'model': oedema where FLAIR is bright, enhancing tumour
    where T1ce is, necrosis where both are (local means over 3x3x3)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(4, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.copy_(torch.tensor([0.0, -7.0, -6.0, -6.0]))
            for klass, channels in ((1, (1, 3)), (2, (3,)), (3, (1,))):
                for channel in channels:
                    self.conv.weight[klass, channel] = 4.0 / 27

    def forward(self, x):
        return self.conv(x)


def test_coalitions_run_around_the_objects_and_agree_with_the_whole_volume(
        coarse_model_folder, small_case):
    """Explaining around the objects runs the coalitions only on a box around what the
    model and the reference mark; its values stay within 0.01 of the whole volume's."""
    from napari_medseg.explain._region import explained_boxes, reference_on_grid
    from napari_medseg.inference._predict import model_grid_shape

    spec = load_model(coarse_model_folder).spec
    model = LoadedModel(spec, coarse_model_folder, (_BrightIsTumour(),))
    volume, reference = small_case.volume, small_case.labels.data
    grid = model_grid_shape(volume.shape, volume.spacing, spec.spacing)
    boxes = explained_boxes(reference_on_grid(reference, grid), spec.patch_size)
    assert boxes is not None  # the tumour's box is smaller than the head
    assert sum(np.prod([s.stop - s.start for s in box]) for box in boxes) < 0.6 * np.prod(grid)
    around = run_to_end(explain_case(model, volume, reference, maps=False, region="objects"))
    whole = run_to_end(explain_case(model, volume, reference, maps=False))
    assert whole.targets["WT"].value_all > 0.3  # the toy model finds the tumour
    assert np.abs(whole.targets["WT"].phi).max() > 0.1
    for name, target in whole.targets.items():
        np.testing.assert_allclose(around.targets[name].phi, target.phi, atol=0.01)
    with pytest.raises(InputError, match="region"):
        run_to_end(explain_case(model, volume, reference, region="tumour"))


def test_a_far_speck_gets_its_own_small_box_not_one_box_over_the_head():
    from napari_medseg.explain._region import explained_boxes

    foreground = np.zeros((78, 120, 120), bool)
    foreground[30:60, 30:65, 26:67] = True  # the tumour
    foreground[8:11, 37:41, 78:81] = True  # a false-positive speck far from it
    foreground[40, 40, 70] = True  # a speck near the tumour: merged with it
    boxes = explained_boxes(foreground, (48, 48, 48))
    assert boxes is not None and len(boxes) == 2
    assert sum(np.prod([s.stop - s.start for s in box]) for box in boxes) < 0.6 * foreground.size
    marked = np.zeros_like(foreground)
    for box in boxes:
        assert not foreground[box].all() and foreground[box].any()
        marked[box] = True
    assert marked[foreground].all()  # every structure lies in a used box
    assert explained_boxes(np.zeros_like(foreground), (48, 48, 48)) is None
    assert explained_boxes(np.ones_like(foreground), (48, 48, 48)) is None  # the whole head


def test_a_block_resamples_as_the_whole_volume_does():
    import torch.nn.functional as F

    from napari_medseg.inference._blocks import resampled_block

    tensor = torch.rand(4, 39, 60, 61, generator=torch.Generator().manual_seed(0))
    case_shape = (77, 119, 122)
    whole = F.interpolate(tensor[None], size=case_shape, mode="trilinear",
                          align_corners=False)[0]
    for block in [(slice(19, 41), slice(0, 27), slice(79, 122)),
                  (slice(0, 77), slice(118, 119), slice(0, 1))]:  # an edge: clamped reads
        torch.testing.assert_close(resampled_block(tensor, case_shape, block),
                                   whole[(slice(None), *block)], atol=2e-6, rtol=0)


def test_labels_counted_only_where_they_may_not_be_background_are_the_whole_volumes():
    """A case resampled only in the tiles that read a model voxel where background does not
    win by a margin gives the labels of the whole volume's resampling: background
    elsewhere, for a 1 mm case of a 1.5 mm model, specks and a tumour."""
    import torch.nn.functional as F

    from napari_medseg.inference._blocks import case_labels, labelled_blocks
    from napari_medseg.labels import most_probable

    generator = torch.Generator().manual_seed(1)
    logits = torch.zeros(4, 40, 64, 60)
    logits[0] = 4.0
    logits[1:, 10:22, 20:40, 15:35] = 6 * torch.rand(3, 12, 20, 20, generator=generator)
    logits[2, 33, 5, 50] = 9.0  # a one-voxel speck far from the tumour
    logits[3, 0, 63, 0] = 9.0  # and one in a corner
    probabilities = logits.softmax(0)
    case_shape = (60, 96, 90)
    whole = most_probable(F.interpolate(probabilities[None], size=case_shape,
                                        mode="trilinear", align_corners=False)[0])
    blocks = labelled_blocks(probabilities, case_shape, tile=16)
    assert len(blocks) < 0.25 * np.prod([-(-n // 16) for n in case_shape])  # a few tiles
    np.testing.assert_array_equal(case_labels(probabilities, case_shape), whole)
    assert whole[0, 95, 0] == 3 and (whole == 2).sum() > 0
    thick = (13, 96, 90)  # thick slices: the case coarser than the model along z
    np.testing.assert_array_equal(
        case_labels(probabilities, thick),
        most_probable(F.interpolate(probabilities[None], size=thick, mode="trilinear",
                                    align_corners=False)[0]))


def test_windows_touching_a_box_give_the_whole_runs_result_inside_it():
    """With instance normalisation a window's output depends on the whole window, so a
    box is explained exactly only with the whole run's own windows: those that touch it."""
    from napari_medseg.explain._region import touches
    from napari_medseg.inference import sliding_window

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, padding=1),
                                  torch.nn.InstanceNorm3d(4), torch.nn.Conv3d(4, 3, 3, padding=1))
    image = torch.randn(2, 40, 56, 48)
    box = (slice(12, 20), slice(30, 41), slice(5, 15))
    with torch.no_grad():
        whole = run_to_end(sliding_window(network, image, (16, 16, 16), 3, 0.5, 4))
        part = run_to_end(sliding_window(network, image, (16, 16, 16), 3, 0.5, 4,
                                         only=lambda window: touches(window, [box])))
        elsewhere = run_to_end(sliding_window(network, image[:, :, 24:, :], (16, 16, 16), 3,
                                              0.5, 4))
    torch.testing.assert_close(part[(slice(None), *box)], whole[(slice(None), *box)])
    assert (part == 0).any()  # windows far from the box did not run
    shifted = (slice(12, 20), slice(6, 17), slice(5, 15))  # the same voxels, other windows
    assert (elsewhere[(slice(None), *shifted)] - whole[(slice(None), *box)]).abs().max() > 1e-3
