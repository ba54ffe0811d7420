"""What a topology check checks: one rule for the dock, the CLI and the cohort batch."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from napari_medseg.topology._errors import Expectation, expectations_from_dict
from napari_medseg.topology._report import parse_expectation


@dataclass(frozen=True)
class CheckSetup:
    """Label names, regions and expected topology for `check_topology`."""

    names: dict[int, str] = field(default_factory=dict)
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    expectations: dict[str, Expectation] = field(default_factory=dict)


def check_setup(label_names: Mapping[int, str] | None = None, spec=None,
                expect: Iterable[str] = (), brats: bool = False,
                present: Sequence[int] | None = None, strict: bool = True,
                model_expectations: bool = True) -> CheckSetup:
    """Resolve what to check, the same way wherever the check is started.

    Parameters
    ----------
    label_names : mapping of int to str, optional
        The mask's own label names (file attributes or layer metadata).
    spec : ModelSpec, optional
        The model that made the mask: its labels name values the mask does
        not name, its regions are checked, its expected topology applies.
    expect : iterable of str
        The user's expectations, ``LABEL:b0=1,b1=0,b2=0[,tubular]`` (name or
        value of a label or region); they override the model's. Blank lines
        are skipped.
    brats : bool
        The mask uses the BraTS labels: BraTS names, regions and the built-in
        model's expected topology, as if ``spec`` were the built-in model's.
        Also implied when the mask's names are all BraTS names.
    present : sequence of int, optional
        Label values in the mask: model expectations for labels and regions
        it does not hold are dropped.
    strict : bool
        Keep the user's expectations for targets the mask lacks, so that
        `check_topology` refuses them (the CLI: a typo is an error); False
        drops them as well (the dock, whose box starts with the model's).
    model_expectations : bool
        Apply the model's expected topology under the user's. False when
        ``expect`` already is the whole statement (the dock's box starts with
        the model's lines, so a line the user deletes stays deleted).

    Returns
    -------
    CheckSetup
    """
    from napari_medseg.labels import BRATS_LABELS, label_names as brats_names

    names = dict(label_names or {})
    if spec is None and (brats or (names and set(names.values()) <= set(brats_names().values()))):
        spec = _builtin_spec()
    if spec is not None:
        for info in spec.labels:
            names.setdefault(info.value, info.name)
    elif brats:
        names.update({info.value: info.name for info in BRATS_LABELS
                      if info.value not in names})
    regions = {name: tuple(values) for name, values in (spec.regions if spec else {}).items()}
    model = expectations_from_dict(spec.expected_topology) \
        if spec is not None and model_expectations else {}
    given = dict(parse_expectation(line) for line in expect if line.strip())
    if present is not None:
        held = set(int(v) for v in present)

        def applies(target: str) -> bool:
            return any(v in held for v in _values_of(target, names, regions))
        model = {key: value for key, value in model.items() if applies(key)}
        if not strict:
            given = {key: value for key, value in given.items() if applies(key)}
    return CheckSetup(names, regions, {**model, **given})


def _values_of(target: str, names: Mapping[int, str], regions: Mapping[str, Sequence[int]]
               ) -> tuple[int, ...]:
    if target in regions:
        return tuple(regions[target])
    by_name = {name: value for value, name in names.items()}
    if target in by_name:
        return (by_name[target],)
    return (int(target),) if target.isdigit() else ()


def _builtin_spec():
    from napari_medseg.models import builtin_models, read_spec

    folder = builtin_models().get("brats_unet")
    return read_spec(folder) if folder is not None else None
