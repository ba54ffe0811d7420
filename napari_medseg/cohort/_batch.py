"""Cohort batch over Dask distributed: one case per task, resumable, a ranked report.

By default a LocalCluster on this machine (one process per worker, one
torch thread each); ``scheduler="tcp://HOST:PORT"`` uses an existing
cluster with no other change; ``scheduler="serial"`` runs in this process.
Finished cases (their ``summary.json`` exists) are skipped, so a rerun after
a crash computes only what is missing; a task whose worker dies is retried
on another. The report is built from what is on disk.
"""
from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from napari_medseg.cohort._discover import CaseInput, discover_cases
from napari_medseg.cohort._priority import priority_rows, write_table
from napari_medseg.cohort._process import SUMMARY, case_folder, is_done, process_case
from napari_medseg.errors import InputError, MedsegError
from napari_medseg.progress import Progress


@dataclass(frozen=True)
class BatchReport:
    """What a batch run did and the ranked table it wrote."""

    rows: list[dict]
    computed: tuple[str, ...]
    resumed: tuple[str, ...]
    failed: tuple[dict, ...]
    skipped: tuple[tuple[str, str], ...]
    csv_path: Path
    json_path: Path
    seconds: float


_LOST_RETRIES = 3  # times a finished case's result may be lost with its worker


def _eta(done: int, total: int, started: float) -> str:
    if done == 0:
        return "ETA unknown"
    remaining = (time.perf_counter() - started) / done * (total - done)
    return f"ETA {int(remaining // 60)}m{int(remaining % 60):02d}s"


def _client(scheduler: str | None, workers: int):
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({error}). Start "
                             "it (dask scheduler) or drop --scheduler for a local cluster")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _run_serial(todo, task_args) -> Generator[tuple[CaseInput, dict | None, str | None]]:
    for case in todo:
        try:
            yield case, process_case(case, *task_args), None
        except Exception as error:  # one bad case must not stop the cohort
            yield case, None, f"{type(error).__name__}: {error}"


_INPUT_ERROR = "medseg_input_error"


def _case_task(case: CaseInput, *task_args) -> dict:
    """`process_case` on a Dask worker: bad input comes back as a result (one line),
    not as an exception that Dask would retry and log with its traceback."""
    try:
        return process_case(case, *task_args)
    except MedsegError as error:
        return {_INPUT_ERROR: f"{type(error).__name__}: {error}"}


def _read_summary(output_dir: str | Path, case_id: str) -> dict:
    return json.loads((case_folder(output_dir, case_id) / SUMMARY).read_bytes())


def _run_dask(todo, task_args, scheduler, workers):
    from distributed import as_completed

    client, cluster = _client(scheduler, workers)
    futures = {client.submit(_case_task, case, *task_args, key=f"medseg-{case.case_id}",
                             retries=2, pure=False): case for case in todo}
    lost = dict.fromkeys(futures, 0)
    try:
        completed = as_completed(futures)
        for future in completed:
            case = futures[future]
            try:
                summary = future.result()
            except Exception as error:
                if future.status == "error" or lost[future] >= _LOST_RETRIES:
                    yield case, None, f"{type(error).__name__}: {error}"
                elif is_done(task_args[0], case.case_id):  # written before its worker died
                    yield case, _read_summary(task_args[0], case.case_id), None
                else:  # the worker holding the result died; Dask computes it again
                    lost[future] += 1
                    completed.add(future)
                continue
            if _INPUT_ERROR in summary:
                yield case, None, summary[_INPUT_ERROR]
            else:
                yield case, summary, None
    finally:
        client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(input_dir: str | Path, output_dir: str | Path, model: str = "brats_unet",
              scheduler: str | None = None, workers: int = 2, method: str = "auto",
              samples: int = 4, device: str = "auto", precision: str = "auto",
              resample: bool = False) -> Generator[Progress, None, BatchReport]:
    """Process every case of ``input_dir`` not yet done; yields progress, returns the report.

    Parameters
    ----------
    input_dir, output_dir : path-like
        Cohort (see `discover_cases`) and results folder (created).
    model : str
        Built-in model name or model folder.
    scheduler : str, optional
        ``None``: a LocalCluster of ``workers`` processes; ``"serial"``: this process;
        else the address of a running Dask scheduler.
    method, samples, device, precision :
        Uncertainty settings (see `process_case`).
    resample : bool
        Put a case's contrasts on different grids onto its finest one (else the case
        fails with the reason).
    """
    from napari_medseg.models import read_spec
    from napari_medseg.models.device import check_precision
    from napari_medseg.models.registry import resolve_model
    from napari_medseg.uncertainty import resolve_methods

    started = time.perf_counter()
    method = ",".join(resolve_methods(method, read_spec(resolve_model(model))))  # before any case
    check_precision(precision)  # before any case, as the method
    cases, skipped = discover_cases(input_dir)
    if not cases and not skipped:
        raise InputError(f"{input_dir}: no cases in this folder. Give the folder that holds "
                         "one folder of contrast files per case, or files named like "
                         "CASE_0000.nii.gz ... CASE_0003.nii.gz")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resumed = tuple(c.case_id for c in cases if is_done(output_dir, c.case_id))
    todo = [c for c in cases if c.case_id not in resumed]
    threads = 1 if scheduler != "serial" else None
    task_args = (str(output_dir), model, method, samples, device, threads, precision, resample)
    runner = _run_serial(todo, task_args) if scheduler == "serial" else \
        _run_dask(todo, task_args, scheduler, workers)
    computed, failed = [], []
    yield Progress(len(resumed), len(cases), f"{len(resumed)} case(s) already done, "
                   f"{len(todo)} to go, {len(skipped)} skipped")
    for case, summary, error in runner:
        if error is None:
            computed.append(case.case_id)
        else:
            failed.append({"case_id": case.case_id, "error": error})
        done = len(resumed) + len(computed) + len(failed)
        yield Progress(done, len(cases), f"{done}/{len(cases)} cases, "
                       f"{_eta(len(computed) + len(failed), len(todo), started)}")
    return build_report(output_dir, cases, skipped, tuple(computed), resumed, tuple(failed),
                        time.perf_counter() - started)


def build_report(output_dir: Path, cases, skipped, computed, resumed, failed,
                 seconds: float) -> BatchReport:
    """Rank every finished case found on disk and write ``triage.csv``/``triage.json``.

    Parameters
    ----------
    output_dir : Path
        The batch's output folder (one sub-folder per case).
    cases : list
        The cases of this run.
    skipped : list of (str, str)
        Inputs left out, with the reason.
    computed, resumed : list of str
        Case ids computed now, and found done from an earlier run.
    failed : list of dict
        ``{"case": id, "error": one line}`` per case that failed.
    seconds : float
        Wall time of the run.
    """
    summaries = [_read_summary(output_dir, c.case_id)
                 for c in cases if is_done(output_dir, c.case_id)]
    rows = priority_rows(summaries, failed)
    csv_path, json_path = write_table(output_dir, rows, {
        "skipped": [{"case": name, "reason": reason} for name, reason in skipped],
        "failed": list(failed)})
    return BatchReport(rows, computed, resumed, failed, tuple(skipped), csv_path, json_path,
                       seconds)
