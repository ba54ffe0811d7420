"""Topology of label masks: Betti numbers, error localisation, one-click fixes."""
from napari_medseg.topology._betti import Betti, betti_numbers
from napari_medseg.topology._errors import (
    Expectation, TopologyError, cl_dice, component_overlaps, expectations_from_dict, find_errors)
from napari_medseg.topology._fixes import apply_fix, fix_changes
from napari_medseg.topology._setup import CheckSetup, check_setup
from napari_medseg.topology._report import (
    OVERLAY_CODES, OVERLAY_COLORS, TargetTopology, check_topology, overlay, parse_expectation,
    report_dict)

__all__ = [
    "OVERLAY_CODES", "OVERLAY_COLORS", "Betti", "CheckSetup", "Expectation", "TargetTopology",
    "TopologyError", "apply_fix", "betti_numbers", "check_setup", "check_topology", "cl_dice",
    "component_overlaps", "expectations_from_dict", "find_errors", "fix_changes", "overlay",
    "parse_expectation", "report_dict",
]
