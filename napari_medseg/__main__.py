"""``python -m napari_medseg`` runs the command line."""
from napari_medseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
