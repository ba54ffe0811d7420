"""Click refinement with the robot user: every label measured, every engine side by side.

The robot user of the field (CVPR 2025 interactive 3D challenge rule): for
the edited label, take the largest 26-connected error component and click
at its distance-transform maximum, positive if missed, negative if extra;
clicks accumulate. After every click, every label's Dice is recorded, so a
click that helps its label by breaking another one counts as harm.

Starting masks:
(a) ``model``: the built-in model's own prediction (all labels) on held-out
    generator cases (``original``, seeds 9000+) and on shifted-protocol cases
    (``shifted``, seeds 9100+: enhancement and oedema dimmed as in the
    fine-tuning bench, or harder with ``--shift hard``), editing NCR, ED, ET;
(b) ``empty``: an empty mask, for whole tumour (WT) and each label.

With ``--suggestions``: five clicks at the first five suggested clicks (sign
from the reference) against five clicks of a multi-label robot user (the
largest wrong region of any label), from the model's prediction, with the
click network (``--suggestion-engine``); suggestions from the model's
probabilities and from the click network's second opinion; the figures are
the ratios of the mean-Dice gains.

Cases are generated at 1.5 mm, the click network's own spacing; ``--spacing``
takes another voxel size (``1`` as BraTS, ``4,1,1`` for 4 mm slices), where the
network's grid is not the case's.

Engines: ``model`` (the segmentation model's probabilities from the run),
``random_walker`` (no model), ``learned`` (click network), and, with
``--baseline REV``, the engines of git revision REV run in a subprocess on
the same cases as the baseline.

Reports per engine, start and target: Dice before and after 1, 3, 5, 10
clicks, DSC-AUC over clicks 0-5, NoC@90 (cap 20), the harm rate (share of
clicks after which any label's Dice fell by more than 0.005), the worst
Dice change of another label in one click, and latency (median, p95).

    .venv/bin/python bench/interactive.py --cases 3 --baseline 6d1574e \
        --json bench/results/interactive.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import HELD_OUT_FIRST_SEED, ROOT, print_table, write_json  # noqa: E402

LABELS = {"NCR": 1, "ED": 2, "ET": 3}
SHIFTS = {"moderate": {"T1ce": {"ET": 0.95}, "FLAIR": {"ED": 0.7}},
          "hard": {"T1ce": {"ET": 0.9}, "FLAIR": {"ED": 0.6}}}


def cases(args) -> list[dict]:
    """Held-out cases with the model's prediction and probabilities (cached on disk)."""
    from napari_medseg.inference import predict
    from napari_medseg.models import load_model
    from napari_medseg.progress import run_to_end
    from napari_medseg.sample import generate_case
    from napari_medseg.sample._contrasts import AcquisitionSettings
    from napari_medseg.sample._generate import PhantomSettings

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    shifted = PhantomSettings(acquisition=AcquisitionSettings(signal_overrides=SHIFTS[args.shift]))
    model = None
    out = []
    for group, first, settings in (("original", HELD_OUT_FIRST_SEED, None),
                                   ("shifted", HELD_OUT_FIRST_SEED + 100, shifted)):
        for seed in range(first, first + args.cases):
            case = generate_case(seed, spacing=args.spacing, settings=settings)
            path = cache / f"{group}_{args.shift}_{seed}{_spacing_tag(args.spacing)}.npz"
            if not path.exists():
                model = model or load_model("brats_unet")
                prediction = run_to_end(predict(model, case.volume, device="cpu"))
                np.savez_compressed(path, labels=prediction.labels,
                                    probabilities=prediction.probabilities.astype(np.float16))
            stored = np.load(path)
            out.append({"group": group, "seed": seed, "volume": case.volume,
                        "reference": case.labels.data, "predicted": stored["labels"],
                        "probabilities": stored["probabilities"]})
    return out


def _spacing_tag(spacing: tuple[float, ...]) -> str:
    """The cache file's suffix for a voxel size other than the default 1.5 mm."""
    return "" if spacing == (1.5,) * 3 else "_" + "x".join(f"{s:g}" for s in spacing)


def _parse_spacing(text: str) -> tuple[float, float, float]:
    """``"1.5"`` or ``"4,1,1"`` (z, y, x in mm) as a voxel size."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"spacing must be numbers in mm, got {text!r}") from None
    if len(values) not in (1, 3) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"spacing is one or three positive mm values (z,y,x), "
                                         f"got {text!r}")
    return values * 3 if len(values) == 1 else values


def engine_for(name: str, case: dict, whole: bool):
    """The engine a user would have: the model engine sees the run's probabilities."""
    from napari_medseg.interactive import make_engine

    if name in ("learned", "learned_float32"):  # as in the dock after a model run: the
        # run's probabilities too; in auto precision (bf16 on a CPU with native bf16), as the
        # dock runs it, or in float32
        return make_engine("learned", case["volume"], device="cpu",
                           probabilities=case["probabilities"],
                           precision="float32" if name.endswith("float32") else "auto")
    if name == "learned_no_run":  # a mask with no model run kept (a review case, a file)
        return make_engine("learned", case["volume"], device="cpu")
    if name != "model":
        return make_engine(name, case["volume"], device="cpu")
    from napari_medseg.interactive._model_engine import ModelEngine

    classes = {0: (0,), 1: (1, 2, 3)} if whole else None
    return ModelEngine(case["volume"], case["probabilities"], classes=classes)


def _robot():
    """This tree's robot user, loaded from its file so that the baseline subprocess (an
    older package on the path) is measured by the same robot."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_bench_robot", ROOT / "napari_medseg" / "interactive" / "_robot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_trials(args, engines: list[str]) -> list[dict]:
    """Every engine, start and target on every case."""
    from napari_medseg.interactive import InteractiveSession

    robot = _robot()
    trials = []
    for case in cases(args):
        reference = case["reference"]
        values = list(LABELS.values())
        built: dict = {}  # one engine per case (the learned one loads its network)
        for engine_name in engines:
            for start in args.starts:
                if start == "model":
                    plans = [(name, reference == v, v, case["predicted"])
                             for name, v in LABELS.items()]
                else:
                    empty = np.zeros_like(reference)
                    plans = [("WT", reference > 0, 1, empty)] + [
                        (name, reference == v, v, empty) for name, v in LABELS.items()]
                for name, target, value, initial in plans:
                    whole = name == "WT"
                    key = (engine_name, whole and engine_name == "model")
                    engine = built.get(key) or built.setdefault(
                        key, engine_for(engine_name, case, whole))
                    if whole and hasattr(engine, "n_labels"):
                        continue  # a multi-label click network edits its labels; WT is a union
                    tracked = (reference > 0).astype(np.uint8) if whole else reference
                    tracked_values = [1] if whole else values
                    session = InteractiveSession(case["volume"], initial.astype(np.uint8),
                                                 label=value, engine=engine)
                    trial = robot.robot_trial(session, target, min_clicks=args.clicks,
                                              cap=args.cap, spacing=case["volume"].spacing,
                                              reference=tracked, values=tracked_values)
                    trial.update(robot.harm_figures(trial["label_dice"],
                                                    tracked_values.index(value)))
                    trials.append({"engine": engine_name, "group": case["group"],
                                   "seed": case["seed"], "start": start, "target": name,
                                   **trial})
                    print(f"{engine_name:14s} {case['group']:8s} {case['seed']} {start:5s} "
                          f"{name:3s} dice {trial['dice'][0]:.3f} -> "
                          f"{trial['dice'][1]:.3f}/{trial['dice'][5]:.3f}/"
                          f"{trial['dice'][10]:.3f} harm {trial['harmful_clicks']}/"
                          f"{trial['clicks']} other {trial['worst_other_change']:+.4f}",
                          flush=True)
    return trials


def _click_for(session, mask, reference, point) -> None:
    """Click at ``point`` with the sign the reference asks for (nothing if it is right)."""
    current, wanted = int(mask[point]), int(reference[point])
    if current == wanted:
        return
    session.set_label(wanted if wanted else current)
    session.click(point, positive=bool(wanted))


def _largest_error_point(mask, reference, spacing):
    """The multi-label robot: deepest voxel of the largest 26-connected wrong region."""
    from scipy import ndimage as ndi

    wrong = (mask != reference) & (mask < 4) & (reference < 4)
    key = np.where(wrong, mask.astype(np.int32) * 4 + reference, -1)
    best = None
    for value in np.unique(key[wrong]):
        regions, count = ndi.label(key == value, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(regions.ravel())[1:]
        if count and (best is None or sizes.max() > best[0]):
            best = (int(sizes.max()), regions == int(np.argmax(sizes)) + 1)
    if best is None:
        return None
    depth = ndi.distance_transform_edt(np.pad(best[1], 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(depth)), depth.shape))


def suggestion_trials(args) -> list[dict]:
    """Five clicks at the first five suggestions against five multi-label robot clicks.

    Suggestions from two error maps: the model run's probabilities, and the
    click network's second opinion (its answer with no click). Every click is
    made with ``--suggestion-engine`` (default the click network: the dock's
    *auto* after a run of the built-in model).
    """
    from napari_medseg.interactive import InteractiveSession
    from napari_medseg.interactive._learned import LearnedEngine
    from napari_medseg.interactive._robot import label_dices
    from napari_medseg.progress import run_to_end
    from napari_medseg.uncertainty import suggest_clicks

    rows = []
    for case in cases(args):
        reference, values = case["reference"], list(LABELS.values())
        start = case["predicted"].astype(np.uint8)
        before = np.mean(label_dices(start, reference, values))
        network = LearnedEngine(case["volume"], device="cpu", precision=args.precision)
        sources = {"model": case["probabilities"],
                   "network": run_to_end(network.second_opinion(start))}
        engine = network if args.suggestion_engine == "learned" else \
            engine_for(args.suggestion_engine, case, False)
        gains = {}
        for how in ("model", "network", "robot"):
            session = InteractiveSession(case["volume"], start, label=1, engine=engine)
            suggestions = suggest_clicks(sources[how], start, spacing=case["volume"].spacing
                                         )[:5] if how != "robot" else []
            for index in range(5):
                point = (suggestions[index]["point"] if index < len(suggestions) else None) \
                    if how != "robot" else _largest_error_point(
                        session.mask, reference, case["volume"].spacing)
                if point is not None:
                    _click_for(session, session.mask, reference, point)
            gains[how] = float(np.mean(label_dices(session.mask, reference, values)) - before)
        rows.append({"cases": case["group"], "seed": case["seed"],
                     "mean Dice before": round(float(before), 4),
                     "gain suggested (model)": round(gains["model"], 4),
                     "gain suggested (network)": round(gains["network"], 4),
                     "gain robot": round(gains["robot"], 4)})
        print(rows[-1], flush=True)
    return rows


def baseline_trials(args) -> list[dict]:
    """The engines of ``args.baseline`` on the same cases, in a subprocess on that tree."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(f"git -C {ROOT} archive {args.baseline} napari_medseg | tar -x -C {tmp}",
                       shell=True, check=True)
        out = Path(tmp) / "trials.json"
        spacing = ",".join(f"{s:g}" for s in args.spacing)
        command = [sys.executable, __file__, "--cases", str(args.cases), "--shift", args.shift,
                   "--cache", args.cache, "--spacing", spacing, "--clicks", str(args.clicks),
                   "--cap", str(args.cap),
                   "--engines", "learned,random_walker", "--trials-only", str(out),
                   "--starts", *args.starts]
        env = {**os.environ, "PYTHONPATH": tmp}
        subprocess.run(command, check=True, env=env)
        trials = json.loads(out.read_bytes())
    for trial in trials:
        trial["engine"] = f"{trial['engine']} (before)"
    return trials


def table(trials: list[dict]) -> list[dict]:
    from napari_medseg.interactive._evaluate import summarise

    rows = []
    keys = sorted({(t["engine"], t["start"], t["group"]) for t in trials},
                  key=lambda k: (k[1] != "model", k[0], k[2]))
    for engine, start, group in keys:
        chosen = [t for t in trials if (t["engine"], t["start"], t["group"]) == (engine, start,
                                                                                 group)]
        for target in [*sorted({t["target"] for t in chosen}), "all"]:
            picked = [t for t in chosen if target in (t["target"], "all")]
            rows.append({"engine": engine, "start": start, "cases": group, "target": target,
                         **summarise(picked)})
    return rows


def _engines(args) -> list[str]:
    """The engines named by ``--engines`` (none with ``--engines ""``: suggestions only)."""
    return [name for name in args.engines.split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3, help="cases per group")
    parser.add_argument("--shift", default="moderate", choices=tuple(SHIFTS))
    parser.add_argument("--engines", default="model,random_walker,learned")
    parser.add_argument("--starts", nargs="+", default=["model", "empty"])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--spacing", type=_parse_spacing, default=(1.5, 1.5, 1.5),
                        help="the cases' voxel size in mm, z,y,x (default 1.5: thick slices "
                             "are for example 4,1,1)")
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", help="git revision whose engines run as the baseline")
    parser.add_argument("--suggestion-engine", default="learned",
                        help="engine of the suggestion and robot clicks (default learned)")
    parser.add_argument("--precision", default="auto",
                        help="the click network's arithmetic in --suggestions (auto, as the "
                        "dock; or float32)")
    parser.add_argument("--suggestions", action="store_true",
                        help="also measure the click suggestions against the robot user")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) /
                                               "medseg-click-bench"))
    parser.add_argument("--trials-only", help=argparse.SUPPRESS)
    parser.add_argument("--json", default="bench/results/interactive.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.trials_only:  # the baseline subprocess: the old package's robot loop
        Path(args.trials_only).write_text(json.dumps(run_trials(args, _engines(args))),
                                          encoding="utf-8")
        return
    trials = run_trials(args, _engines(args))
    if args.baseline:
        trials += baseline_trials(args)
    suggested = suggestion_trials(args) if args.suggestions else []
    rows = table(trials)
    columns = ["engine", "start", "cases", "target", "n", "dice@0", "dice@1", "dice@3", "dice@5",
               "dice@10", "auc0-5", "noc90", "harm_rate", "worst_other_change",
               "latency_median_ms", "latency_p95_ms"]
    if rows:
        print_table(rows, columns)
    summary = {}
    if suggested:
        print("\nSuggestions: five clicks at the first five against five robot clicks "
              f"({args.suggestion_engine} engine, from the model's prediction)")
        print_table(suggested, list(suggested[0]))
        robot = sum(r["gain robot"] for r in suggested)
        for source in ("model", "network"):
            gained = sum(r[f"gain suggested ({source})"] for r in suggested)
            summary[f"suggestion_gain_ratio_{source}"] = round(gained / robot, 3) \
                if robot else None
            print(f"gain ratio suggested ({source}) / robot: "
                  f"{summary[f'suggestion_gain_ratio_{source}']}")
    write_json(args.json, {"command": " ".join(["bench/interactive.py", *sys.argv[1:]]),
                           "rows": rows, "suggestions": suggested, **summary,
                           "trials": trials})


if __name__ == "__main__":
    main()
