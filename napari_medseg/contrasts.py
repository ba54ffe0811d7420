"""MRI contrast names: recognising them in file and layer names, matching them.

Canonical names follow the BraTS four-contrast protocol: ``T1``, ``T1ce``,
``T2``, ``FLAIR``. File names use many spellings (BraTS 2023 writes ``t1n``,
``t1c``, ``t2w``, ``t2f``); `guess_contrast` maps them to the canonical name.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

BRATS_CONTRASTS: tuple[str, ...] = ("T1", "T1ce", "T2", "FLAIR")

_ALIASES: dict[str, tuple[str, ...]] = {
    "T1": ("t1", "t1n", "t1w", "t1native", "native", "mprage"),
    "T1ce": ("t1ce", "t1c", "t1gd", "t1post", "t1contrast", "t1wce", "t1cegd", "ce"),
    "T2": ("t2", "t2w"),
    "FLAIR": ("flair", "t2f", "t2flair", "t2wflair"),
}
_ALIAS_TO_CONTRAST = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
#: BIDS's contrast-agent entity (``sub-01_ce-gadolinium_T1w``): a T1w file with it is post-contrast
_BIDS_AGENT = re.compile(r"(?:^|_)ce-[A-Za-z0-9]+(?=_|$)")


def _stem(name: str) -> str:
    from napari_medseg.io._names import image_stem

    return image_stem(name)


def _tokens(name: str) -> list[str]:
    return [token for token in re.split(r"[^a-z0-9]+", _stem(name).lower()) if token]


def without_contrast(stem: str) -> str:
    """``stem`` without a trailing contrast token (``case_001_t1c`` -> ``case_001``), and
    without BIDS's contrast-agent entity then (``sub-01_ce-gd_T1w`` -> ``sub-01``).

    Parameters
    ----------
    stem : str
        A file name without its image suffix (see `napari_medseg.io.image_stem`).
    """
    match = re.search(r"[_\-]([A-Za-z0-9]+)$", stem)
    if match and match.group(1).lower() in _ALIAS_TO_CONTRAST:
        return _BIDS_AGENT.sub("", stem[:match.start()])
    return stem


def is_contrast_name(name: str) -> bool:
    """Does ``name`` say nothing but a contrast (``flair.nii.gz``, ``T1ce``)?

    Parameters
    ----------
    name : str
        A file or layer name.
    """
    tokens = _tokens(name)
    return "".join(tokens) in _ALIAS_TO_CONTRAST or (
        len(tokens) == 1 and tokens[0] in _ALIAS_TO_CONTRAST)


def guess_contrast(name: str) -> str | None:
    """Canonical contrast named in ``name``, or None when it names none.

    Tokens are read from the end of the name (where BraTS-style files put the
    contrast), pairs of adjacent tokens before single ones so ``t2_flair`` is
    FLAIR, not T2.

    Parameters
    ----------
    name : str
        A file or layer name.

    Examples
    --------
    >>> guess_contrast("BraTS-GLI-00000-000-t1c.nii.gz")
    'T1ce'
    >>> guess_contrast("case_t2_flair") , guess_contrast("brain")
    ('FLAIR', None)
    >>> guess_contrast("sub-01_T1w.nii.gz"), guess_contrast("sub-01_ce-gadolinium_T1w.nii.gz")
    ('T1', 'T1ce')
    """
    contrast = _named_contrast(_tokens(name))
    if contrast == "T1" and _BIDS_AGENT.search(_stem(name)):
        return "T1ce"
    return contrast


def _named_contrast(tokens: list[str]) -> str | None:
    for end in range(len(tokens), 0, -1):
        if end >= 2 and (tokens[end - 2] + tokens[end - 1]) in _ALIAS_TO_CONTRAST:
            return _ALIAS_TO_CONTRAST[tokens[end - 2] + tokens[end - 1]]
        if tokens[end - 1] in _ALIAS_TO_CONTRAST:
            return _ALIAS_TO_CONTRAST[tokens[end - 1]]
    return None


def match_contrasts(names: Sequence[str],
                    wanted: Sequence[str] = BRATS_CONTRASTS) -> dict[str, str | None]:
    """Assign each wanted contrast the first name that spells it.

    Parameters
    ----------
    names : sequence of str
        Candidate names (layer names or file names).
    wanted : sequence of str
        Canonical contrasts to fill.

    Returns
    -------
    dict
        ``{contrast: name or None}``; a name is used at most once.
    """
    assignment: dict[str, str | None] = {contrast: None for contrast in wanted}
    for name in names:
        contrast = guess_contrast(name)
        if contrast in assignment and assignment[contrast] is None:
            assignment[contrast] = name
    return assignment
