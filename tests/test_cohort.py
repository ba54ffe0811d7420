"""Cohort triage: discovery, priority, Dask batch (external scheduler, killed worker, resume)."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from napari_medseg.cli import main
from napari_medseg.cohort import discover_cases, priority_rows, run_batch
from napari_medseg.errors import InputError
from napari_medseg.models.device import cpu_has_native_bf16
from napari_medseg.progress import run_to_end
from napari_medseg.sample import generate_case, write_case


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Four small cases in sub-folders, and one corrupt case (a truncated file)."""
    root = tmp_path_factory.mktemp("cohort")
    for index in range(4):
        write_case(generate_case(40 + index, spacing=4.0), root / f"case{index}", f"case{index}")
    write_case(generate_case(50, spacing=4.0), root / "corrupt", "corrupt")
    flair = root / "corrupt" / "corrupt_flair.nii.gz"
    flair.write_bytes(flair.read_bytes()[:300])
    (root / "notes").mkdir()
    (root / "notes" / "readme_t1.nii.gz").write_text("only one contrast", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tests.conftest import make_model_folder

    return str(make_model_folder(tmp_path_factory.mktemp("m") / "coarse", patch=(16, 16, 16),
                                 spacing=(6.0, 6.0, 6.0)))


def test_discovery_layouts_and_skips(cohort, tmp_path):
    cases, skipped = discover_cases(cohort)
    assert [c.case_id for c in cases] == ["case0", "case1", "case2", "case3", "corrupt"]
    assert cases[0].images[1].name == "case0_t1ce.nii.gz"
    assert skipped == [("notes", "missing contrast(s) T1ce, T2, FLAIR")]
    for channel in range(4):
        (tmp_path / f"brain7_{channel:04d}.nii.gz").write_bytes(b"")
    (tmp_path / "brain8_0000.nii.gz").write_bytes(b"")
    found, skipped = discover_cases(tmp_path)
    assert [c.case_id for c in found] == ["brain7"] and skipped[0][0] == "brain8"


def _write_bids_scans(case_folder, anat, prefix, seed):
    """A generated case's four scans under BIDS names in ``anat``."""
    write_case(generate_case(seed, spacing=4.0), case_folder, "c")
    anat.mkdir(parents=True, exist_ok=True)
    for ours, bids in (("t1", "T1w"), ("t1ce", "ce-gadolinium_T1w"), ("t2", "T2w"),
                       ("flair", "FLAIR")):
        (case_folder / f"c_{ours}.nii.gz").rename(anat / f"{prefix}_{bids}.nii.gz")
    (case_folder / "c_seg.nii.gz").unlink()


def test_a_bids_dataset_is_a_cohort_of_subjects_and_sessions(model, tmp_path):
    """`batch` found no case in a BIDS dataset: its scans lie in sub-XX/[ses-YY/]anat/."""
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    _write_bids_scans(root / "sub-01", root / "sub-01" / "anat", "sub-01", 61)
    (root / "sub-01" / "anat" / "sub-01_T1w_defacemask.nii.gz").write_bytes(b"")
    _write_bids_scans(root / "sub-02" / "ses-01", root / "sub-02" / "ses-01" / "anat",
                      "sub-02_ses-01", 62)
    (root / "sub-02" / "ses-02" / "anat").mkdir(parents=True)
    (root / "sub-02" / "ses-02" / "anat" / "sub-02_ses-02_T1w.nii.gz").write_bytes(b"")
    (root / "derivatives" / "seg" / "sub-01").mkdir(parents=True)
    cases, skipped = discover_cases(root)
    assert [c.case_id for c in cases] == ["sub-01", "sub-02_ses-01"]
    assert [p.name for p in cases[0].images] == [
        "sub-01_T1w.nii.gz", "sub-01_ce-gadolinium_T1w.nii.gz", "sub-01_T2w.nii.gz",
        "sub-01_FLAIR.nii.gz"]
    assert skipped == [("sub-02_ses-02", "missing contrast(s) T1ce, T2, FLAIR")]
    report = run_to_end(run_batch(root, tmp_path / "out", model=model, scheduler="serial",
                                  samples=2))
    assert sorted(report.computed) == ["sub-01", "sub-02_ses-01"]
    assert (tmp_path / "out" / "sub-02_ses-01" / "summary.json").is_file()


def test_priority_combines_uncertainty_topology_and_volume():
    def summary(name, epistemic, volume, errors=0):
        return {"case_id": name, "epistemic_foreground": epistemic,
                "volumes_ml": {"WT": volume}, "topology_errors": {"WT": errors},
                "topology_mismatch": []}

    rows = priority_rows([summary("calm", 0.01, 50), summary("unsure", 0.09, 52),
                          summary("broken", 0.02, 48, errors=3), summary("empty", 0.05, 0.0),
                          summary("typical", 0.03, 51)])
    order = [r["case_id"] for r in rows]
    assert order == ["empty", "unsure", "broken", "typical", "calm"]
    assert rows[order.index("empty")]["volume"] == 1.0
    assert rows[order.index("broken")]["reasons"] == "topology"


def test_batch_on_external_scheduler_reports_corrupt_case_and_resumes(cohort, model, tmp_path,
                                                                       capsys):
    from distributed import LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        code = main(["batch", str(cohort), str(out), "--model", model, "--samples", "2",
                     "--scheduler", cluster.scheduler_address])
    assert code == 1  # one case failed; the others are done
    captured = capsys.readouterr()
    assert "failed corrupt" in captured.err and "skipped notes" in captured.err
    assert "Traceback" not in captured.err and "Compute Failed" not in captured.err
    table = json.loads((out / "triage.json").read_bytes())
    done = [r for r in table["cases"] if r["status"] == "done"]
    assert sorted(r["case_id"] for r in done) == ["case0", "case1", "case2", "case3"]
    assert table["cases"][-1]["case_id"] == "corrupt" and table["cases"][-1]["status"] == "failed"
    assert [r["priority"] for r in done] == sorted((r["priority"] for r in done), reverse=True)
    assert (out / "case0" / "seg.nii.gz").is_file()
    assert (out / "case0" / "epistemic.nii.gz").is_file()
    assert (out / "triage.csv").read_text(encoding="utf-8").startswith("rank,case_id,priority")
    picked = "bfloat16" if cpu_has_native_bf16() else "float32"  # what auto takes here
    assert json.loads((out / "case0" / "summary.json").read_bytes())["precision"] == picked
    (out / "case1" / "summary.json").write_text('{"case_id": "ca', encoding="utf-8")  # truncated
    (out / "case2" / "summary.json").write_text("{}", encoding="utf-8")
    report = run_to_end(run_batch(cohort, out, model=model, scheduler="serial", samples=2))
    assert sorted(report.computed) == ["case1", "case2"]  # damaged summaries are recomputed
    assert sorted(report.resumed) == ["case0", "case3"]
    assert json.loads((out / "case1" / "summary.json").read_bytes())["case_id"] == "case1"


def test_unknown_precision_is_refused_before_any_case(cohort, model, tmp_path):
    with pytest.raises(InputError, match="unknown precision 'half'"):
        run_to_end(run_batch(cohort, tmp_path / "out", model=model, scheduler="serial",
                             precision="half"))
    assert not (tmp_path / "out").exists()


def test_a_folder_without_cases_is_refused(model, tmp_path):
    """A wrong folder wrote an empty triage table and exited 0."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a case", encoding="utf-8")
    with pytest.raises(InputError, match="no cases in this folder"):
        run_to_end(run_batch(tmp_path / "empty", tmp_path / "out", model=model,
                             scheduler="serial"))
    assert not (tmp_path / "out").exists()


def test_interrupted_batch_reruns_only_missing_cases(cohort, model, tmp_path):
    out = tmp_path / "out"
    batch = run_batch(cohort, out, model=model, scheduler="serial", samples=2)
    for progress in batch:
        if progress.done >= 2:
            break
    batch.close()  # the run dies here
    finished = {p.name for p in out.iterdir() if (p / "summary.json").is_file()}
    assert len(finished) == 2
    report = run_to_end(run_batch(cohort, out, model=model, scheduler="serial", samples=2))
    assert set(report.resumed) == finished
    assert set(report.computed) == {"case0", "case1", "case2", "case3"} - finished


@pytest.mark.slow
def test_killed_worker_is_replaced_and_no_case_is_lost(cohort, model, tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        batch = run_batch(cohort, out, model=model, scheduler=cluster.scheduler_address,
                          samples=2)
        killed = False
        while True:
            try:
                progress = next(batch)
            except StopIteration as stop:
                report = stop.value
                break
            if progress.done >= 1 and not killed:
                os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker dies mid-run
                killed = True
    assert killed
    assert sorted(report.computed) == ["case0", "case1", "case2", "case3"]
    assert [f["case_id"] for f in report.failed] == ["corrupt"]
    summaries = [json.loads((out / f"case{i}" / "summary.json").read_bytes()) for i in range(4)]
    assert all(np.isfinite(s["epistemic_foreground"]) for s in summaries)


def test_priority_ranks_share_ties():
    from napari_medseg.cohort._priority import _ranks

    ranks = _ranks(np.array([0.2, 0.5, 0.5, 0.9]))
    assert ranks[1] == ranks[2] == pytest.approx(0.5) and ranks[0] == 0 and ranks[3] == 1


@pytest.fixture
def c_locale():
    """The C locale, as a library may set it in the viewer's process (SimpleITK's DICOM
    writer here): Python's default text encoding becomes ASCII."""
    import locale

    saved = locale.setlocale(locale.LC_ALL)
    locale.setlocale(locale.LC_ALL, "C")
    assert locale.getpreferredencoding(False).lower() in ("ansi_x3.4-1968", "ascii")
    yield
    locale.setlocale(locale.LC_ALL, saved)


def test_triage_table_and_review_with_accented_names_under_the_c_locale(tmp_path, c_locale):
    from napari_medseg.cohort._priority import write_table
    from napari_medseg.cohort._review import mark_reviewed, read_queue

    rows = [{"rank": 1, "case_id": "patient_müller", "priority": 0.9, "status": "done",
             "reasons": "uncertainty"},
            {"rank": 2, "case_id": "björk", "priority": None, "status": "failed",
             "reasons": "t1.nii.gz is oblique (12° from the scanner axes)"}]
    csv_path, _ = write_table(tmp_path, rows, {})
    assert "patient_müller" in csv_path.read_text(encoding="utf-8")
    assert "12° from" in csv_path.read_text(encoding="utf-8")
    mark_reviewed(tmp_path, "patient_müller")
    queue = read_queue(tmp_path)
    assert [(row["case_id"], row["reviewed"]) for row in queue] == [
        ("patient_müller", True), ("björk", False)]
