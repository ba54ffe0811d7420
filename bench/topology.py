"""Topology errors: recall on planted errors, false alarms on clean masks, speed vs gudhi.

Clean masks: whole-tumour masks of held-out generator cases made simple
(largest component, holes filled, tunnels closed: b = (1, 0, 0)) and
vessel-tree phantoms. Planted at random places and sizes: fragments (balls
away from the mask), cavities (balls hollowed inside), handles (a square
tunnel drilled through), breaks (a vessel cut across). An error counts as
found when an error of that kind overlaps the planted region.

    .venv/bin/python bench/topology.py --cases 10 --json bench/results/topology.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label

from _common import HELD_OUT_FIRST_SEED, brats_sized_case, print_table, write_json
from napari_medseg.sample import generate_case, vessel_tree
from napari_medseg.topology import (
    Expectation, betti_numbers, check_topology, find_errors, fix_changes)

SIMPLE = Expectation(b0=1, b1=0, b2=0)
TUBE = Expectation(b0=1, b1=0, b2=0, tubular=True)


def simple_tumour(seed: int) -> np.ndarray | None:
    mask = generate_case(seed, spacing=1.5).labels.data > 0
    for radius in range(1, 5):
        largest = label(mask, connectivity=3)
        mask = largest == np.argmax(np.bincount(largest.ravel())[1:]) + 1
        mask = ndi.binary_fill_holes(ndi.binary_closing(mask, iterations=radius) | mask)
        if betti_numbers(mask).as_dict() == {"b0": 1, "b1": 0, "b2": 0}:
            return mask.astype(np.uint8)
    return None


def ball(shape, centre, radius):
    grid = np.indices(shape) - np.asarray(centre).reshape(3, 1, 1, 1)
    return np.sqrt((grid**2).sum(0)) <= radius


def plant_fragment(mask, rng):
    outside = ndi.distance_transform_edt(mask == 0)
    radius = rng.uniform(1, 3)
    candidates = np.argwhere((outside > radius + 4) & (outside < radius + 15))
    centre = candidates[rng.integers(len(candidates))]
    region = ball(mask.shape, centre, radius)
    planted = mask.copy()
    planted[region] = 1
    return planted, region


def plant_cavity(mask, rng):
    depth = ndi.distance_transform_edt(mask)
    radius = rng.uniform(1, 2.5)
    candidates = np.argwhere(depth > radius + 2.5)
    if not len(candidates):
        return None
    centre = candidates[rng.integers(len(candidates))]
    region = ball(mask.shape, centre, radius)
    planted = mask.copy()
    planted[region] = 0
    return planted, region


def plant_handle(mask, rng):
    for _ in range(50):
        axis = int(rng.integers(3))
        side = int(rng.integers(2, 4))
        others = [a for a in range(3) if a != axis]
        projection = mask.any(axis=axis)
        candidates = np.argwhere(ndi.binary_erosion(projection, iterations=side + 2))
        if not len(candidates):
            continue
        u, v = candidates[rng.integers(len(candidates))]
        region = np.zeros(mask.shape, bool)
        index = [slice(None)] * 3
        index[others[0]], index[others[1]] = slice(u, u + side), slice(v, v + side)
        region[tuple(index)] = True
        region &= mask.astype(bool)
        planted = mask.copy()
        planted[region] = 0
        if betti_numbers(planted).as_dict() == {"b0": 1, "b1": 1, "b2": 0}:
            return planted, region
    return None


def plant_break(mask, rng):
    """Cut the tube across its local axis: a slab 2-5 voxels thick (a 2-5 mm gap)."""
    depth = ndi.distance_transform_edt(mask)
    centre_line = np.argwhere(depth >= 1.5)
    points = np.argwhere(mask)
    for _ in range(50):
        centre = centre_line[rng.integers(len(centre_line))]
        near = points[np.linalg.norm(points - centre, axis=1) <= 6]
        axis = np.linalg.svd(near - near.mean(0), full_matrices=False)[2][0]
        thickness = rng.uniform(2, 5)
        offsets = points - centre
        along = offsets @ axis
        across = np.linalg.norm(offsets - along[:, None] * axis, axis=1)
        cut = points[(np.abs(along) <= thickness / 2) & (across <= depth[tuple(centre)] + 2.5)]
        planted = mask.copy()
        planted[tuple(cut.T)] = 0
        pieces = label(planted, connectivity=3)
        sizes = np.bincount(pieces.ravel())[1:]
        if len(sizes) == 2 and sizes.min() > 60:
            region = np.zeros(mask.shape, bool)
            region[tuple(cut.T)] = True
            return planted, region
    return None


KIND_OF = {"fragment": "fragment", "cavity": "cavity", "handle": "handle", "break": "broken_tube"}


def found(errors, kind, region, mask) -> bool:
    """A fragment or cavity is found when the error's voxels overlap the planted
    region; a handle or break when the error's own fix changes voxels there
    (closes that tunnel, bridges that gap)."""
    for error in errors:
        if error.kind != KIND_OF[kind]:
            continue
        if kind in ("fragment", "cavity"):
            if region[tuple(error.voxels.T)].any():
                return True
        elif region[fix_changes(mask, error)[0]].any():
            return True
    return False


def quality(n_cases: int, per_kind: int, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    tumours = [m for m in (simple_tumour(HELD_OUT_FIRST_SEED + i) for i in range(n_cases))
               if m is not None]
    vessels = [vessel_tree(HELD_OUT_FIRST_SEED + i)[1].data for i in range(n_cases)]
    false_alarms = {"tumour": sum(len(find_errors(m, 1, SIMPLE)) for m in tumours),
                    "vessel": sum(len(find_errors(m, 1, TUBE)) for m in vessels),
                    "clean_masks": len(tumours) + len(vessels)}
    plans = [("tumour", "fragment", plant_fragment), ("tumour", "cavity", plant_cavity),
             ("tumour", "handle", plant_handle), ("vessel", "fragment", plant_fragment),
             ("vessel", "break", plant_break)]
    recall = {}
    for structure, kind, plant in plans:
        masks, expectation = (tumours, SIMPLE) if structure == "tumour" else (vessels, TUBE)
        hits = trials = 0
        for trial in range(per_kind * len(masks)):
            planted = plant(masks[trial % len(masks)], rng)
            if planted is None:
                continue
            mask, region = planted
            trials += 1
            hits += found(find_errors(mask, 1, expectation), kind, region, mask)
        recall[f"{structure} {kind}"] = {"found": hits, "planted": trials,
                                         "recall": hits / trials if trials else float("nan")}
    return recall, false_alarms


def misses_for(structure, kind, plant, masks, expectation, rng, trials=8):
    """Debug helper: planted masks whose error was not found."""
    out = []
    for trial in range(trials):
        planted = plant(masks[trial % len(masks)], rng)
        if planted and not found(find_errors(planted[0], 1, expectation), kind, planted[1],
                                 planted[0]):
            out.append(planted)
    return out


def speed(seed: int, repeats: int) -> dict:
    import gudhi

    _, labels = brats_sized_case(seed, with_labels=True)
    mask = labels > 0
    timings = {"ours_betti": [], "ours_full_check": [], "gudhi_persistence": []}
    for _ in range(repeats):
        start = time.perf_counter()
        ours = betti_numbers(mask)
        timings["ours_betti"].append(time.perf_counter() - start)
        start = time.perf_counter()
        check_topology(labels, names={1: "NCR", 2: "ED", 3: "ET"},
                       regions={"WT": (1, 2, 3)}, expectations={"WT": SIMPLE})
        timings["ours_full_check"].append(time.perf_counter() - start)
        start = time.perf_counter()
        complex_ = gudhi.CubicalComplex(top_dimensional_cells=np.where(mask, 0.0, 1.0))
        complex_.compute_persistence()
        reference = complex_.persistent_betti_numbers(0.0, 0.0)
        timings["gudhi_persistence"].append(time.perf_counter() - start)
    medians = {k: float(np.median(v)) for k, v in timings.items()}
    return {"shape": list(mask.shape), "betti_ours": ours.as_dict(),
            "betti_gudhi": list(map(int, reference)), **medians,
            "speedup_betti_vs_gudhi": medians["gudhi_persistence"] / medians["ours_betti"],
            "speedup_full_check_vs_gudhi": medians["gudhi_persistence"]
            / medians["ours_full_check"]}


def messy_mask(seed: int, fragments: int) -> np.ndarray:
    """A 240x240x155 BraTS-sized label map with ``fragments`` small specks of each
    label scattered over the volume (balls of radius 1-2 voxels, apart from the tumour)."""
    _, labels = brats_sized_case(seed, with_labels=True)
    labels = labels.copy()
    rng = np.random.default_rng(seed)
    placed = 0
    while placed < fragments:
        centre = rng.integers([3, 3, 3], np.array(labels.shape) - 3)
        radius = rng.uniform(1.0, 2.0)
        origin = np.maximum(centre - 5, 0)
        window = labels[tuple(slice(o, c + 6) for o, c in zip(origin, centre))]
        speck = ball(window.shape, centre - origin, radius)
        if window[ndi.binary_dilation(speck, iterations=2)].any():
            continue
        window[speck] = 1 + placed % 3
        placed += 1
    return labels


def messy_speed(seed: int, fragments: int, repeats: int) -> dict:
    """The full check (every label, WT as one simple structure, and a tubular
    reading of ED, which runs the broken-tube search) on a mask with many specks."""
    labels = messy_mask(seed, fragments)
    timings = {"full_check": [], "full_check_tubular": []}
    for _ in range(repeats):
        for key, expected in (("full_check", {"WT": SIMPLE}),
                              ("full_check_tubular", {"WT": SIMPLE,
                                                      "ED": Expectation(tubular=True)})):
            start = time.perf_counter()
            result = check_topology(labels, names={1: "NCR", 2: "ED", 3: "ET"},
                                    regions={"WT": (1, 2, 3)}, expectations=expected)
            timings[key].append(time.perf_counter() - start)
    errors = sum(len(t.errors) for t in result.values())
    return {"shape": list(labels.shape), "fragments": fragments, "errors_found": errors,
            **{k: float(np.median(v)) for k, v in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--per-kind", type=int, default=3, help="plants per kind per mask")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fragments", type=int, default=1000,
                        help="specks in the messy-mask speed case")
    parser.add_argument("--speed-only", action="store_true", help="skip the recall part")
    parser.add_argument("--json", default="bench/results/topology.json")
    args = parser.parse_args()
    messy = messy_speed(HELD_OUT_FIRST_SEED + 100, args.fragments, args.repeats)
    print(f"messy mask ({messy['fragments']} specks, {messy['errors_found']} errors found): "
          f"full check {messy['full_check']:.2f} s, with a tubular label "
          f"{messy['full_check_tubular']:.2f} s (goal < 2 s)\n")
    if args.speed_only:
        write_json(args.json, {"command": "bench/topology.py --speed-only", "messy": messy})
        return
    recall, false_alarms = quality(args.cases, args.per_kind, args.seed)
    print_table([{"planted error": k, **v} for k, v in recall.items()],
                ["planted error", "found", "planted", "recall"])
    print(f"\nfalse alarms on {false_alarms['clean_masks']} clean masks: tumour "
          f"{false_alarms['tumour']}, vessel {false_alarms['vessel']}\n")
    timing = speed(HELD_OUT_FIRST_SEED + 100, args.repeats)
    print_table([{"method": k, "seconds": timing[k]} for k in
                 ("ours_betti", "ours_full_check", "gudhi_persistence")], ["method", "seconds"])
    print(f"\n240x240x155 mask: Betti ours {timing['betti_ours']} gudhi {timing['betti_gudhi']}; "
          f"speed-up vs gudhi: Betti {timing['speedup_betti_vs_gudhi']:.1f}x, full check "
          f"{timing['speedup_full_check_vs_gudhi']:.1f}x")
    write_json(args.json, {"command": "bench/topology.py", "recall": recall,
                           "false_alarms": false_alarms, "speed": timing, "messy": messy})


if __name__ == "__main__":
    main()
