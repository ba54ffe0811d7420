"""Qt widgets of napari-medseg: they orchestrate the Qt-free core."""
