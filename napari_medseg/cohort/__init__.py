"""Cohort triage: batch prediction, uncertainty and topology QC on Dask, ranked for review."""
from napari_medseg.cohort._batch import BatchReport, build_report, run_batch
from napari_medseg.cohort._discover import CaseInput, discover_cases
from napari_medseg.cohort._priority import WEIGHTS, priority_rows
from napari_medseg.cohort._process import is_done, process_case

__all__ = ["BatchReport", "CaseInput", "WEIGHTS", "build_report", "discover_cases", "is_done",
           "priority_rows", "process_case", "run_batch"]
