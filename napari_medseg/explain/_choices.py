"""The explanation's choices and their defaults, without torch or SciPy.

The dock fills its baseline list and the clinician ranking table from these
when it opens; the computations that use them load later, off the GUI thread.
"""
from __future__ import annotations

#: What replaces an absent contrast (`make_baseline`).
BASELINES = ("zero", "mean", "blur")

#: Default protocol rankings (1 = most important), editable in the dock: oedema
#: and whole tumour are read on FLAIR then T2; enhancement on T1ce against T1;
#: necrosis and tumour core on T1ce, with T2 for the fluid-filled core.
PROTOCOL_RANKINGS: dict[str, dict[str, int]] = {
    "NCR": {"T1ce": 1, "T2": 2, "FLAIR": 3, "T1": 4},
    "ED": {"FLAIR": 1, "T2": 2, "T1": 3, "T1ce": 4},
    "ET": {"T1ce": 1, "T1": 2, "FLAIR": 3, "T2": 4},
    "WT": {"FLAIR": 1, "T2": 2, "T1ce": 3, "T1": 4},
    "TC": {"T1ce": 1, "T2": 2, "FLAIR": 3, "T1": 4},
}
