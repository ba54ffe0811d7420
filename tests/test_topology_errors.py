"""Topology errors: planted fragments, cavities, handles and breaks are found and fixed."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medseg.errors import InputError
from napari_medseg.sample import vessel_tree
from napari_medseg.topology import (
    Expectation, apply_fix, betti_numbers, check_topology, cl_dice, find_errors,
    parse_expectation, report_dict)

SIMPLE = Expectation(b0=1, b1=0, b2=0)


def ball(shape, centre, radius):
    grid = np.indices(shape) - np.asarray(centre).reshape(3, 1, 1, 1)
    return np.sqrt((grid**2).sum(0)) <= radius


@pytest.fixture
def blob():
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[ball(labels.shape, (20, 20, 20), 11)] = 2
    return labels


def test_clean_blob_has_no_errors(blob):
    assert find_errors(blob, 2, SIMPLE) == []
    assert find_errors(blob, 2) == []


def test_fragment_found_where_planted_and_removed(blob):
    blob[ball(blob.shape, (5, 5, 33), 2)] = 2
    [error] = find_errors(blob, 2, SIMPLE)
    assert error.kind == "fragment" and error.fix == "remove"
    np.testing.assert_allclose(error.centroid_voxel, (5, 5, 33), atol=0.5)
    fixed = apply_fix(blob, error)
    assert betti_numbers(fixed == 2).as_dict() == {"b0": 1, "b1": 0, "b2": 0}


def test_cavity_found_and_filled_but_other_structure_inside_is_not_a_hole(blob):
    holed = blob.copy()
    holed[ball(blob.shape, (20, 22, 18), 3)] = 0
    [error] = find_errors(holed, 2, SIMPLE)
    assert error.kind == "cavity" and error.fix == "fill"
    np.testing.assert_array_equal(apply_fix(holed, error), blob)
    with_core = blob.copy()
    with_core[ball(blob.shape, (20, 20, 20), 4)] = 1  # necrosis inside oedema: anatomy
    assert [e.kind for e in find_errors(with_core, 2)] == []


def test_handle_found_and_closed(blob):
    tunnel = blob.copy()
    tunnel[18:23, 18:23, :] = 0  # a square tunnel through the blob
    assert betti_numbers(tunnel == 2).b1 == 1
    errors = find_errors(tunnel, 2, SIMPLE)
    assert [e.kind for e in errors] == ["handle"] and errors[0].fix == "close"
    centre = np.asarray(errors[0].centroid_voxel)
    assert np.linalg.norm(centre[:2] - (20, 20)) < 8
    fixed = apply_fix(tunnel, errors[0])
    assert betti_numbers(fixed == 2).b1 == 0
    assert np.all(fixed[tunnel == 2] == 2)  # the fix only adds


def test_broken_tube_found_and_bridged():
    _, mask = vessel_tree(3)
    broken = mask.data.copy()
    broken[18:21] = 0
    errors = find_errors(broken, 1, Expectation(b0=1, b1=0, b2=0, tubular=True))
    assert [e.kind for e in errors] == ["broken_tube"] and errors[0].fix == "bridge"
    fixed = apply_fix(broken, errors[0])
    assert betti_numbers(fixed == 1).as_dict() == {"b0": 1, "b1": 0, "b2": 0}
    assert cl_dice(fixed == 1, mask.data == 1) > cl_dice(broken == 1, mask.data == 1)


def test_region_check_and_reference_comparison(blob):
    labels = blob.copy()
    labels[ball(blob.shape, (20, 20, 20), 4)] = 1
    labels[ball(blob.shape, (4, 4, 4), 2)] = 1  # stray NCR voxel blob away from the tumour
    reference = blob.copy()
    reference[ball(blob.shape, (20, 20, 20), 4)] = 1
    results = check_topology(labels, names={1: "NCR", 2: "ED"},
                             regions={"WT": (1, 2, 3)}, expectations={"WT": SIMPLE},
                             reference=reference)
    assert set(results) == {"NCR", "ED", "WT"}
    wt = results["WT"]
    assert [e.kind for e in wt.errors] == ["fragment"] and wt.errors[0].label == 1
    assert wt.reference["betti_error"]["b0"] == 1
    report = report_dict(results, np.diag([2.0, 2.0, 2.0, 1.0]))
    entry = report["targets"]["WT"]
    assert entry["matches_expected"] is False and entry["expected"] == {"b0": 1, "b1": 0, "b2": 0}
    error = entry["errors"][0]
    assert error["centroid_mm_ras"] == pytest.approx([8.0, 8.0, 8.0], abs=1.0)
    assert error["size_mm3"] == pytest.approx(error["size_voxels"] * 8.0)


def test_merges_and_splits_against_reference():
    reference = np.zeros((20, 20, 40), np.uint8)
    reference[5:15, 5:15, 2:12] = 1
    reference[5:15, 5:15, 16:26] = 1
    merged = reference.copy()
    merged[8:12, 8:12, 12:16] = 1
    results = check_topology(merged, reference=reference)
    assert results["1"].reference["merges"] == 1
    results = check_topology(reference, reference=merged)
    assert results["1"].reference["splits"] == 1


def test_expectation_parsing_and_bad_input(blob):
    assert parse_expectation("WT:b0=1,b1=0,b2=0") == ("WT", SIMPLE)
    assert parse_expectation("vessel:b0=1,tubular")[1].tubular
    with pytest.raises(InputError, match="b0=N"):
        parse_expectation("WT:components=1")
    with pytest.raises(InputError, match="fractional"):
        check_topology(blob * 0.3)
    with pytest.raises(InputError, match="differs from the mask"):
        check_topology(blob, reference=blob[:10])
    assert check_topology(np.zeros((5, 5, 5), np.uint8)) == {}
    with pytest.raises(InputError, match="no such label or region"):
        check_topology(blob, expectations={"XYZ": SIMPLE})


def test_one_rule_resolves_what_a_check_checks():
    from napari_medseg.models import load_model
    from napari_medseg.topology import check_setup

    spec = load_model("brats_unet", folds=[0]).spec
    from_spec = check_setup(spec=spec)
    assert from_spec.names == {1: "NCR", 2: "ED", 3: "ET"} and set(from_spec.regions) >= {"WT"}
    assert from_spec.expectations["WT"].b1 == 0
    named = check_setup({1: "NCR", 2: "ED", 3: "ET"}, present=[2])  # BraTS names: the same
    assert named.regions == from_spec.regions and "WT" in named.expectations
    only_core = check_setup({1: "NCR", 2: "ED", 3: "ET"}, present=[1], expect=["2:b0=1"])
    assert "WT" in only_core.expectations and "2" in only_core.expectations  # strict: kept
    assert "2" not in check_setup({1: "NCR"}, present=[1], expect=["2:b0=1"],
                                  strict=False).expectations
    boxed = check_setup({1: "NCR", 2: "ED", 3: "ET"}, expect=["ED:b0=1"],
                        model_expectations=False)  # the dock: its box is the whole statement
    assert set(boxed.expectations) == {"ED"} and boxed.regions == from_spec.regions
    vessels = check_setup({1: "vessel"}, expect=["vessel:b0=1,tubular"])
    assert vessels.regions == {} and vessels.expectations["vessel"].tubular
    assert check_setup(brats=True).names == {1: "NCR", 2: "ED", 3: "ET"}
    with pytest.raises(InputError, match="cannot read"):
        check_setup(expect=["WT b0=1"])
