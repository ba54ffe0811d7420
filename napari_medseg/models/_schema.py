"""The ``model.json`` schema, with bounds, checked before anything is allocated.

pydantic (which napari already depends on) validates the whole document in
strict mode: unknown keys at any depth are refused, numbers must be numbers
(``"48"`` is not a patch side), and every size has a bound, so a spec cannot
make the loader allocate gigabytes or hand a network a zero-sized patch. The
first problem becomes one line naming its place in the document
(``folds[0].loader: unknown key``).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from napari_medseg.errors import InputError, describe

MAX_WIDTH = 320  # feature channels per U-Net level: a few hundred MB of weights at most
MAX_PATCH = 256  # voxels per patch side
MAX_FOLDS = 10
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

PositiveSpacing = Annotated[float, Field(gt=0.01, le=50.0)]
PatchSide = Annotated[int, Field(ge=8, le=MAX_PATCH)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Channel = Annotated[float, Field(ge=0.0, le=1.0)]


class _InputSchema(BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(min_length=1, max_length=64)]
    normalization: Literal["zscore_nonzero", "zscore", "none"] = "zscore_nonzero"


class _LabelSchema(BaseModel):
    model_config = _STRICT
    value: Annotated[int, Field(ge=1, le=255)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(max_length=500)] = ""
    color: Annotated[list[Channel], Field(min_length=3, max_length=4)] = [1.0, 1.0, 1.0, 1.0]


class _FoldSchema(BaseModel):
    model_config = _STRICT
    file: Annotated[str, Field(min_length=1, max_length=255)]
    sha256: Annotated[str, Field(pattern=r"^([0-9a-fA-F]{64})?$")] = ""


class _UNetArguments(BaseModel):
    model_config = _STRICT
    in_channels: Annotated[int, Field(ge=1, le=32)]
    n_classes: Annotated[int, Field(ge=2, le=256)]
    widths: Annotated[list[Width], Field(min_length=2, max_length=6)] = [12, 24, 48, 96]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


class _ArchitectureSchema(BaseModel):
    model_config = _STRICT
    name: Literal["unet3d"]
    args: _UNetArguments


class _TopologySchema(BaseModel):
    model_config = _STRICT
    b0: Annotated[int, Field(ge=0, le=1000)] | None = None
    b1: Annotated[int, Field(ge=0, le=1000)] | None = None
    b2: Annotated[int, Field(ge=0, le=1000)] | None = None
    tubular: bool = False


class SpecSchema(BaseModel):
    """Every field of ``model.json``, its type and its bounds."""

    model_config = _STRICT
    format_version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1, max_length=100)]
    version: Annotated[str, Field(min_length=1, max_length=40)]
    description: Annotated[str, Field(max_length=2000)] = ""
    task: Literal["segmentation", "interactive"] = "segmentation"
    architecture: _ArchitectureSchema
    inputs: Annotated[list[_InputSchema], Field(min_length=1, max_length=16)]
    labels: Annotated[list[_LabelSchema], Field(min_length=1, max_length=255)]
    regions: dict[str, Annotated[list[Annotated[int, Field(ge=1, le=255)]],
                                 Field(min_length=1)]] = {}
    patch_size: Annotated[list[PatchSide], Field(min_length=3, max_length=3)]
    spacing: Annotated[list[PositiveSpacing], Field(min_length=3, max_length=3)]
    folds: Annotated[list[_FoldSchema], Field(min_length=1, max_length=MAX_FOLDS)]
    expected_topology: dict[str, _TopologySchema] = {}
    training: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    parent: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> SpecSchema:
        values = [label.value for label in self.labels]
        if len(set(values)) != len(values):
            raise ValueError("labels: two labels share a value")
        arguments = self.architecture.args
        divisor = 2 ** (len(arguments.widths) - 1)
        if any(side % divisor for side in self.patch_size):
            raise ValueError(f"patch_size: every side must be a multiple of {divisor} "
                             f"(the network halves it {len(arguments.widths) - 1} times)")
        if self.task == "segmentation":
            if arguments.in_channels != len(self.inputs):
                raise ValueError(f"architecture.args.in_channels is {arguments.in_channels} "
                                 f"but there are {len(self.inputs)} inputs")
            if arguments.n_classes != 1 + max(values):
                raise ValueError(f"architecture.args.n_classes is {arguments.n_classes} but "
                                 f"the labels need {1 + max(values)} (background + labels)")
        return self


def _place(location: tuple) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: " if text else ""


def validate_spec(data: object, where: str) -> SpecSchema:
    """Check a parsed ``model.json`` against `SpecSchema`.

    Parameters
    ----------
    data : object
        The document as ``json.loads`` returned it.
    where : str
        The file, for the message.

    Raises
    ------
    InputError
        One line: the first problem's place in the document, what is wrong,
        and how many problems there are in all.
    """
    if not isinstance(data, dict):
        raise InputError(describe(where, f"must hold a JSON object, not {type(data).__name__}"))
    try:
        return SpecSchema.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        first = problems[0]
        message = "unknown key" if first["type"] == "extra_forbidden" else \
            first["msg"].removeprefix("Value error, ")
        more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise InputError(describe(where, f"{_place(first['loc'])}{message}{more}",
                                  "Fix model.json (the README's 'Model folders' lists every "
                                  "field and its bounds)")) from None
