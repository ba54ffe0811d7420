"""The Refine section's click engine: what it was built for, and its worker bodies.

An engine reads the case's images and the mask when it is built (in a worker,
as clicking starts); it is kept while the mask's and the images' arrays are
the ones it read and the engine choice is the same (`EngineKey`), held
weakly with `layers.case_token`: neither a freed array's reused ``id()`` nor
the next case's reused layer names pass for them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from napari_medseg.errors import MedsegError

#: The engine list's entries and the core's names for them.
ENGINES = {"auto": "auto", "model-aware (segmentation model)": "model",
           "learned click model": "learned", "random walker (no model)": "random_walker"}
_MASK = "\0mask"  # the mask's key among the images' contrast names


@dataclass(frozen=True)
class EngineKey:
    """What an engine was built for: ``case_token`` of the mask and images, the choice."""

    case: tuple
    engine: str

    @classmethod
    def of(cls, layer, images: dict, engine: str) -> EngineKey:
        """The key of an engine built now for ``layer``, ``images`` and ``engine``."""
        from napari_medseg.layers import case_token

        return cls(case_token({_MASK: layer, **images}), engine)

    def fits(self, layer, images: dict, engine: str) -> bool:
        """Whether an engine with this key serves ``layer``, ``images`` and ``engine``."""
        from napari_medseg.layers import is_case

        return engine == self.engine and is_case(self.case, {_MASK: layer, **images})


def session_factory(layer, images: dict, label: int, engine: str, device: str | None,
                    protect: bool, segmentation_model, precision: str = "auto") -> Callable:
    """The function a worker calls to build the click session on ``layer``'s array.

    Parameters
    ----------
    layer : napari Labels layer
        The mask the clicks edit (its array is shared, not copied).
    images : dict of str to napari Image layer
        The case's contrasts.
    label : int
        The label the clicks edit first.
    engine : str
        The engine list's entry (a key of `ENGINES`).
    device : str or None
        Where the engine runs (None: the best available).
    protect : bool
        Positive clicks take only background voxels.
    segmentation_model : path or None
        The model that made the mask (its probabilities, its labels).
    precision : str
        The click network's arithmetic (the Model section's choice).

    Raises
    ------
    MedsegError
        When the images cannot be read as one case.
    """
    from napari_medseg.interactive import InteractiveSession, make_engine
    from napari_medseg.layers import layer_probabilities, volume_builder

    make_volume = volume_builder(images)  # built in the worker
    data, probabilities = layer.data, layer_probabilities(layer)

    def make():  # in the worker: the engine may load a model
        volume = make_volume()
        engine_object = make_engine(ENGINES[engine], volume, device=device,
                                    probabilities=probabilities,
                                    segmentation_model=segmentation_model, precision=precision)
        return InteractiveSession(volume, data, label, engine_object, copy=False,
                                  protect=protect)
    return make


def build_session(make_session):
    """Worker body: the session with its engine (warmed up), or the user-fixable problem."""
    try:
        session = make_session()
    except MedsegError as error:
        return error
    getattr(session.engine, "warm_up", lambda: None)()
    return session


def propose(session, position, positive):
    """Worker body: the click's change, or the user-fixable problem (a message, not a
    traceback)."""
    try:
        return session.propose(position, positive)
    except MedsegError as error:
        return error
