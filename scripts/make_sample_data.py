"""Write the committed sample case to ``sample_data/`` from its seed.

Run: ``.venv/bin/python scripts/make_sample_data.py``. The same command on
any machine writes the same case (the tests check the committed files
against the generator).
"""
from __future__ import annotations

from napari_medseg.sample import SAMPLE_CASE_ID, SAMPLE_SEED, generate_case, write_case
from napari_medseg.sample._sample import SAMPLE_DIR, SAMPLE_SPACING_MM


def main() -> None:
    case = generate_case(SAMPLE_SEED, spacing=SAMPLE_SPACING_MM)
    for name, path in write_case(case, SAMPLE_DIR, SAMPLE_CASE_ID, overwrite=True).items():
        print(f"{name:6s} {path}")


if __name__ == "__main__":
    main()
