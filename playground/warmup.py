"""What a fresh training worker prepares while it waits for its first run.

The first run after a server start used to pay for everything a process does only once:
building its data set (seconds for ``shapes``), the first call of every kernel, the allocator,
a CUDA context. :func:`warm_up_tasks` yields that work as small callables, the most useful
first; the worker (:func:`playground.runners.local._worker_main`) runs them one at a time
while no run is waiting (:func:`run_while_idle`), so a run that arrives meanwhile waits for at
most the task in progress:

- the data set of every preset at the input its training uses by default, through the
  trainer's own loading call (:func:`playground.train.prefetch_data`), so the in-process
  cache of :func:`playground.data.load_dataset` holds exactly what a default run asks for;
  ``shapes`` at 3x32x32 (the starter design and most presets) comes first;
- one step of a small CNN on a few examples, on the worker's device, through
  :func:`playground.train.train` (kernels, autograd, the optimiser, the instrumentation).

The tasks run on one intra-op thread: the server is rendering its first page meanwhile, and on
a small shared machine a second OpenMP thread waits for a free core at every operation
(measured on the 2-core development machine with two other busy processes: ``shapes`` at
3x32x32 built in 1.2 s on one thread and in 17.8 s on two).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.spec import NetworkSpec
    from playground.train import TrainSettings

Task = Callable[[], object]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def warm_up_tasks(device: str | None = None, step_first: bool = False) -> Iterator[Task]:
    """The warm-up of a worker pinned to ``device`` (None: the CPU), most useful first.

    ``step_first`` puts the training step before the data sets: for a worker that may be
    handed any design at once (a Ray worker), the step's one-off imports matter more than
    one data set.

    Lazy: planning imports the data-set fitting of :mod:`playground.targets` (a second or
    more), so it happens on the first ``next()``, as part of the first task, not before the
    worker can look for a run.
    """
    from playground.presets import list_presets
    from playground.targets import fit_to_dataset
    from playground.train import TrainSettings

    if step_first:
        yield partial(_one_step, device)
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for preset in list_presets():
        spec, _ = fit_to_dataset(preset.spec(), preset.dataset)
        key = (preset.dataset, tuple(spec.input.shape))
        if key not in seen:
            seen.add(key)
            yield partial(_prefetch, spec, TrainSettings(dataset=preset.dataset))
    if not step_first:
        yield partial(_one_step, device)


def _prefetch(spec: NetworkSpec, settings: TrainSettings) -> None:
    from playground.train import prefetch_data

    with one_thread():
        prefetch_data(spec, settings)


def _one_step(device: str | None) -> None:
    from playground.presets import get_preset
    from playground.spec import InputSpec
    from playground.train import TrainSettings, train

    spec = get_preset("small_cnn", input=InputSpec(channels=3, height=16, width=16))
    settings = TrainSettings(dataset="shapes", n_train=64, n_val=32, batch_size=32, steps=1,
                             device=device or "cpu")
    with one_thread():
        train(spec, settings, emit=lambda records: None)


def run_while_idle(tasks: Iterator[Task], busy: Callable[[], bool]) -> bool:
    """Run the next tasks of ``tasks`` until ``busy()`` says a run is waiting or none is left;
    returns whether all are done (call again with the same iterator to go on). A task that
    fails is dropped: a run that needs its work does it again and reports its own error; a
    plan that fails ends the warm-up."""
    while not busy():
        try:
            task = next(tasks)
        except Exception:  # StopIteration: all done; anything else: the plan failed
            return True
        with contextlib.suppress(Exception):
            task()
    return False
