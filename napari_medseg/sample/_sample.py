"""The committed sample case (``sample_data/`` in the repository)."""
from __future__ import annotations

from pathlib import Path

from napari_medseg.io import read_labels, read_volume
from napari_medseg.labels import label_names
from napari_medseg.sample._generate import SyntheticCase, case_files, generate_case

SAMPLE_CASE_ID = "medseg_sample_000"
SAMPLE_SEED = 20261126
SAMPLE_SPACING_MM = 1.5
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"


def load_sample_case(folder: str | Path | None = None) -> SyntheticCase:
    """The sample case: read from ``sample_data/`` when present, else generated.

    An installed (non-editable) package has no ``sample_data/`` folder; the
    case is then generated from its seed, which gives the same data.

    Parameters
    ----------
    folder : str or Path, optional
        Where to read it from (default the repository's ``sample_data/``).
    """
    folder = Path(folder) if folder is not None else SAMPLE_DIR
    images, reference = case_files(folder, SAMPLE_CASE_ID)
    if all(path.exists() for path in (*images, reference)):
        volume = read_volume(images)
        labels = read_labels(reference)
        labels = type(labels)(labels.data, labels.affine, label_names(), labels.source_path)
        return SyntheticCase(volume=volume, labels=labels, seed=SAMPLE_SEED,
                             info={"source": str(folder)})
    return generate_case(SAMPLE_SEED, spacing=SAMPLE_SPACING_MM)
