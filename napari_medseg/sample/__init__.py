"""BraTS-like sample cases built on the MNI ICBM152 anatomy.

`generate_case` makes a four-contrast case with a tumour (labels 1 NCR,
2 ED, 3 ET) from a seed; `load_sample_case` returns the committed sample.
"""
from napari_medseg.sample._contrasts import AcquisitionSettings
from napari_medseg.sample._generate import (
    PhantomSettings, SyntheticCase, case_files, generate_case, write_case)
from napari_medseg.sample._sample import SAMPLE_CASE_ID, SAMPLE_SEED, load_sample_case
from napari_medseg.sample._vessels import vessel_tree

__all__ = [
    "SAMPLE_CASE_ID",
    "SAMPLE_SEED",
    "AcquisitionSettings",
    "PhantomSettings",
    "SyntheticCase",
    "case_files",
    "generate_case",
    "load_sample_case",
    "vessel_tree",
    "write_case",
]
