"""Running core generators in napari thread workers, with progress and errors.

Workers never touch layers: results arrive in ``on_done`` on the GUI thread.
An ``on_done`` that builds several layers is written as a generator that
yields after each one; the runner resumes it once per event-loop turn, so
napari draws and answers between layers instead of freezing for all of them.
Each step's paint is held to the turn after it (`PaintHold`), so napari's
build of a layer and its paint do not add up to one stall either.
Errors a user can fix (`MedsegError`) are caught inside the worker and become
one clear notification with no traceback; anything else is a bug, and napari's
worker relays it with its traceback (and the status line names it).
"""
from __future__ import annotations

import atexit
import functools
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from inspect import isgenerator

from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton

from napari_medseg._qt.canvas import PaintHold
from napari_medseg._qt.warmup import wait_for_imports
from napari_medseg.errors import MedsegError
from napari_medseg.progress import Progress


class _Failure:
    """A user-fixable error carried out of the worker as a result."""

    def __init__(self, error: MedsegError):
        self.error = error


def _guarded(make_generator: Callable[[], Generator]) -> Generator:
    wait_for_imports()  # in the worker: importing beside the warm-up is not safe
    try:
        result = yield from make_generator()
    except MedsegError as error:
        return _Failure(error)
    return result


class _Task(functools.partial):
    """``_guarded(make_generator)``, named after its task: napari lists a closing window's
    running workers by their function ("Executing Model run (napari-medseg)" rather than
    a function's address)."""

    label = ""

    def __repr__(self) -> str:
        return f"{self.label} (napari-medseg)"

    __str__ = __repr__


def _task(make_generator: Callable[[], Generator], label: str) -> _Task:
    task = _Task(_guarded, make_generator)
    task.label = label
    return task


#: progress is shown at most once per this many ms. Each report repaints the dock, and
#: napari's window then composes through OpenGL: on a software renderer (llvmpipe, as
#: under Xvfb, in VMs and remote desktops) ten reports a second took about 1 s of CPU
#: from a 7 s model run on two cores.
PROGRESS_MS = 250
_WORKERS: weakref.WeakSet = weakref.WeakSet()  # the dock's task workers, for the exit
_EXIT_WAIT_MS = 30_000


def _stop_workers_at_exit() -> None:
    """Registered with ``atexit``: napari was closed while a task ran; it asks the task to
    stop but does not wait, and Python's teardown then deleted the worker's signals under
    it ('RuntimeError in aborted thread' on the terminal). Each task stops at its next
    progress report, and the exit waits for that (about a second)."""
    from qtpy.QtCore import QThreadPool

    for worker in list(_WORKERS):
        worker.quit()
    QThreadPool.globalInstance().waitForDone(_EXIT_WAIT_MS)


atexit.register(_stop_workers_at_exit)


def error_message(error: BaseException) -> str:
    """A one-line message for the user."""
    if isinstance(error, MedsegError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class TaskRunner(QObject):
    """Starts one generator at a time and wires it to a progress bar and buttons.

    ``settled`` is emitted once a task is over for the user: its result is
    entirely in the viewer, or it failed, or it was cancelled.
    """

    settled = Signal()

    def __init__(self, progress: QProgressBar, status: QLabel, run_button: QPushButton,
                 cancel_button: QPushButton | None = None):
        super().__init__()
        self.progress, self.status = progress, status
        self.run_button, self.cancel_button = run_button, cancel_button
        self.worker: GeneratorWorker | None = None
        self._showing: Generator | None = None  # an on_done adding layers turn by turn
        self.failed = False  # the last task failed (its status line says why)
        self._pending: Progress | None = None  # a report not shown yet (`PROGRESS_MS`)
        self._cancelled_why = "cancelled"  # for the status line once the task stops
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_MS)
        self._progress_timer.timeout.connect(self._show_pending)
        if cancel_button is not None:  # short tasks (reading a file) have none
            cancel_button.clicked.connect(lambda: self.cancel())  # not with ``checked``
        self._set_running(False)

    @property
    def busy(self) -> bool:
        """True while a task runs or its result is still being added to the viewer."""
        return self.worker is not None or self._showing is not None

    def start(self, make_generator: Callable[[], Generator], on_done: Callable,
              label: str) -> GeneratorWorker | None:
        """Run ``make_generator()`` in a thread; ``on_done(result)`` on the GUI thread.

        Parameters
        ----------
        make_generator : callable
            Makes the generator that does the work, yielding Progress.
        on_done : callable
            Called with the generator's return value on the GUI thread. It may return
            a generator of steps (see `show`) or the status line to show.
        label : str
            What the task is, for the progress line and messages.
        """
        if self.busy:
            show_info(f"{label} is waiting: another task is still running")
            return None
        worker = create_worker(_task(make_generator, label), _start_thread=False)
        _WORKERS.add(worker)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result: self._finish(on_done, result, label))
        worker.errored.connect(lambda error: self._fail(error, label, notify=False))
        worker.aborted.connect(lambda: self._aborted(label))
        worker.finished.connect(lambda: self._ended(worker, label))
        self.worker, self.failed, self._pending = worker, False, None
        self._cancelled_why = "cancelled"
        self.progress.setMaximum(1)
        self.progress.setValue(0)  # not the last run's full bar
        self._set_running(True)
        self.status.setText(f"{label}: starting...")
        worker.start()
        return worker

    def start_on_case(self, viewer, case: tuple, make_generator: Callable[[], Generator],
                      on_done: Callable, label: str) -> GeneratorWorker | None:
        """`start` for a task that reads one case, stopped once that case closes
        (`stop_when_case_closes`).

        Parameters
        ----------
        viewer : napari.Viewer
            Whose layers hold the case.
        case : tuple
            `layers.case_token` of the images the task reads.
        make_generator, on_done, label
            As for `start`.
        """
        worker = self.start(make_generator, on_done, label)
        if worker is not None:
            stop_when_case_closes(self, viewer, case)
        return worker

    def cancel(self, why: str = "cancelled") -> None:
        """Ask the running task to stop at its next progress report; its status line then
        says ``why`` ("<label>: cancelled, nothing changed")."""
        if self.worker is not None:
            self._cancelled_why = why
            self.status.setText("Cancelling...")
            self.worker.quit()

    def _on_progress(self, progress: Progress) -> None:
        """Show the first report at once, then the latest at most every `PROGRESS_MS`."""
        self._pending = progress
        if not self._progress_timer.isActive():
            self._show_pending()

    def _show_pending(self) -> None:
        if self._pending is None or self.worker is None:  # none new, or the task is over
            return
        progress, self._pending = self._pending, None
        self.progress.setMaximum(max(progress.total, 1))
        self.progress.setValue(progress.done)
        self.status.setText(progress.message)
        self._progress_timer.start()

    def _finish(self, on_done: Callable, result, label: str) -> None:
        self._pending = None
        self.worker = None
        self._set_running(False)
        if isinstance(result, _Failure):
            self._fail(result.error, label)
            return
        try:
            with PaintHold():  # napari paints after the layers, on a later turn
                shown = on_done(result)
        except MedsegError as error:
            self._fail(error, label)
            return
        if isgenerator(shown):
            self.show(shown, label)
            return
        self.status.setText(shown if isinstance(shown, str) else f"{label}: done")
        self.settled.emit()

    def show(self, steps: Generator, label: str) -> None:
        """Run ``steps`` on the GUI thread, one step per event-loop turn, each step's paint
        on the turn between (as an ``on_done`` generator's; `busy` until the last).

        Parameters
        ----------
        steps : generator
            Each step adds or removes a layer (`add_layers_stepwise`,
            `remove_layers_stepwise`); a string it returns is the final status line
            (else "<label>: done").
        label : str
            What is being shown, for the status line.
        """
        self._showing = steps
        self.status.setText(f"{label}: adding layers...")
        self._show_next(label)

    def _show_next(self, label: str) -> None:
        """One step of a generator ``on_done``; its paint comes on the next event-loop
        turn, and the next step on the turn after."""
        hold = PaintHold()
        try:
            with hold:
                next(self._showing)
        except StopIteration as stop:  # a generator may return its status line
            self._showing = None
            self.status.setText(stop.value if isinstance(stop.value, str) else f"{label}: done")
            self.settled.emit()
            return
        except MedsegError as error:
            self._showing = None
            self._fail(error, label)
            return
        except BaseException:
            self._showing = None
            self.settled.emit()
            raise
        hold.then(lambda: self._show_next(label))

    def _fail(self, error: BaseException, label: str, notify: bool = True) -> None:
        self.worker, self.failed = None, True
        self._set_running(False)
        message = f"{label} failed: {error_message(error)}"
        self.status.setText(message)
        if notify:
            show_error(message)
        self.settled.emit()

    def _aborted(self, label: str) -> None:
        self.worker = None
        self._set_running(False)
        self.progress.setValue(0)
        self.status.setText(f"{label}: {self._cancelled_why}, nothing changed")
        self.settled.emit()

    def _ended(self, worker: GeneratorWorker, label: str) -> None:
        """The worker's last signal. A stop asked for after the task's last progress
        report (while it finished its work) gets neither ``returned`` nor ``aborted`` from
        napari's worker, only this: the task is over, stopped, and nothing is added."""
        if self.worker is worker:
            self._aborted(label)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)  # idle bars only took room in the dock
        self.run_button.setEnabled(not running)
        if self.cancel_button is not None:
            self.cancel_button.setEnabled(running)


#: a task's status line ends so when its case closed before its result could be shown
CASE_CLOSED = "its case was closed while it ran"


def stop_when_case_closes(runner: TaskRunner, viewer, case: tuple) -> None:
    """Cancel ``runner``'s task once none of ``case``'s images (`layers.case_token`) is
    left in ``viewer`` (the case was replaced or closed): its result could only land on
    another case, and it would hold the CPU the next case's work needs. Lets go of the
    viewer when the task settles.

    Parameters
    ----------
    runner : TaskRunner
        Running the task (`TaskRunner.start_on_case` calls this as it starts).
    viewer : napari.Viewer
        Whose layer removals are watched.
    case : tuple
        `layers.case_token` of the images the task reads.
    """
    from napari_medseg.layers import case_open

    worker = runner.worker

    def check(_event=None) -> None:
        if runner.worker is worker and not worker.abort_requested \
                and not case_open(case, viewer.layers):
            runner.cancel(f"stopped, {CASE_CLOSED}")

    def release() -> None:
        viewer.layers.events.removed.disconnect(check)
        runner.settled.disconnect(release)

    viewer.layers.events.removed.connect(check)
    runner.settled.connect(release)


def add_layers_stepwise(viewer, layer_data: Iterable[tuple]) -> Iterator:
    """Add napari layer-data tuples ``(data, kwargs, layer type)`` to ``viewer``, yielding
    each new layer: as an ``on_done`` generator, one layer per event-loop turn.

    Into an empty viewer, the first turn only gives the viewer the layers' number of
    dimensions (and yields None): napari's dims sliders then appear, and the canvas
    they shrink repaints at once (Qt paints an OpenGL widget inside its resize), on
    that turn rather than inside the first layer's build.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layers go.
    layer_data : iterable of tuple
        What a reader or sample command returns.
    """
    layer_data = list(layer_data)
    if layer_data and not len(viewer.layers):
        ndim = max(getattr(data, "ndim", 2) for data, _, _ in layer_data)
        if ndim > viewer.dims.ndim:
            viewer.dims.ndim = ndim
            yield None
    for data, kwargs, layer_type in layer_data:
        yield getattr(viewer, f"add_{layer_type}")(data, **kwargs)


def remove_layers_stepwise(viewer, layers: Iterable) -> Iterator[None]:
    """Remove ``layers`` (those still in ``viewer``) one per event-loop turn, as an
    ``on_done`` generator's steps: napari collects garbage and repaints on each removal.

    The last given goes first: the top of napari's layer list (points, then masks,
    then images), as a user closes a case.

    Parameters
    ----------
    viewer : napari.Viewer
        Where the layers are.
    layers : iterable of napari layers
        What to remove, in layer-list order (edited masks are autosaved as their
        case closes).
    """
    for layer in reversed(list(layers)):
        if layer in viewer.layers:
            viewer.layers.remove(layer)
            yield None
