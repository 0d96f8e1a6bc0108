"""The training loop: epochs of shuffled mini-batches, any descentlab optimizer, evaluation and
per-layer diagnostics every epoch, divergence detection, a progress bar.

``batch_size=None`` (or at least the training set's size) is plain gradient descent: one step
per epoch on the whole training split. The order of the examples depends only on ``seed``, so
runs that differ only in their optimizer see the same batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data import Splits
from ..nn import MLP
from .diagnostics import LayerStats, detect, layer_stats, norm
from .store import Store


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int | None = 64  # None: the whole training split (gradient descent)
    seed: int = 0  # the order of the batches
    target_accuracy: float | None = None  # for "epochs to target"

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and not (
                isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer or None, got "
                             f"{self.batch_size!r}")


@dataclass
class RunResult:
    status: str  # "finished" or "diverged"
    epochs: int  # completed epochs
    train_loss: list[float] = field(default_factory=list)  # per epoch, from epoch 1
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    epochs_to_target: int | None = None
    wall_s: float = 0.0
    initial: list[LayerStats] = field(default_factory=list)  # at initialisation
    finding: str = ""  # the detector's verdict at initialisation
    message: str = ""
    layers: list[list[LayerStats]] = field(default_factory=list)  # per epoch, from epoch 1

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float, val_accuracy: float,
                  stats: list[LayerStats], target: float | None, store: Store | None,
                  run_id: int | None, elapsed_s: float) -> None:
        """Record a finished epoch (and whether it reached ``target`` accuracy first), in
        the result and in ``store`` (if any); a non-finite validation loss is a divergence."""
        if not math.isfinite(val_loss):
            self.status = "diverged"
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        self.val_accuracy.append(val_accuracy)
        self.layers.append(stats)
        self.epochs = epoch
        if target is not None and self.epochs_to_target is None and val_accuracy >= target:
            self.epochs_to_target = epoch
        if store is not None:
            store.add_epoch(run_id, epoch, train_loss, val_loss, val_accuracy, elapsed_s, stats)

    def diverge(self, epoch: int, store: Store | None, run_id: int | None,
                elapsed_s: float) -> None:
        """Record that a step of ``epoch`` met a non-finite loss or gradient."""
        self.status = "diverged"
        self.train_loss.append(math.nan)
        if store is not None:
            store.add_epoch(run_id, epoch, math.nan, math.nan, math.nan, elapsed_s, [])

    def finish(self, wall_s: float, test: Callable[[], tuple[float, float]],
               store: Store | None, run_id: int | None) -> None:
        """Complete the run: its time, its test loss and accuracy (``test()``, skipped after a
        divergence) and its row in ``store`` (if any)."""
        self.wall_s = wall_s
        if not self.diverged:
            self.test_loss, self.test_accuracy = test()
        if store is not None:
            store.finish_run(run_id, self.status, wall_s=self.wall_s, epochs=self.epochs,
                             test_loss=self.test_loss, test_accuracy=self.test_accuracy,
                             epochs_to_target=self.epochs_to_target, finding=self.finding,
                             message=self.message)


def evaluate(net: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Loss and accuracy (NaN for a regression task) on ``(x, y)``."""
    return net.evaluate(x, y)


def train(net: MLP, optimizer, splits: Splits, config: TrainConfig = TrainConfig(), *,
          store: Store | None = None, run_id: int | None = None,
          progress: bool | object = False, label: str = "") -> RunResult:
    """Train ``net`` with ``optimizer`` (built over ``net.params``) and record everything.

    With a ``store`` and ``run_id``, epoch rows and layer statistics are written as they are
    made and the run's row is completed at the end. ``progress``: True for a rich progress bar
    of its own, or a ``rich.progress.Progress`` to add a task to.
    """
    train_set, val = splits.train, splits.validation
    x, y = train_set.x, train_set.y
    n = len(x)
    batch = n if config.batch_size is None else min(config.batch_size, n)
    rng = np.random.default_rng(config.seed)
    start = time.perf_counter()
    result = RunResult("finished", 0)

    # at initialisation: one pass over the whole training split
    train_loss0 = net.loss_and_grad(x, y)
    initial_norms = [norm(g) for g in net.weight_grads]
    result.initial = layer_stats(net, initial_norms, None)
    finding = detect(initial_norms)
    result.finding, result.message = finding.kind, finding.message
    val_loss, val_acc = evaluate(net, val.x, val.y)
    if store is not None:
        store.add_epoch(run_id, 0, train_loss0, val_loss, val_acc, 0.0, result.initial)

    bar, task, own = progress_bar(progress, label or "training", config.epochs)
    # a diverging run overflows on its way to a non-finite loss, which is detected and
    # recorded below: NumPy's warnings about it would only be noise
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(1, config.epochs + 1):
                order = rng.permutation(n)
                sums = np.zeros(len(net.layers))
                losses = []
                steps = -(-n // batch)
                for number in range(steps):
                    rows = order[number * batch:(number + 1) * batch]
                    loss = net.loss_and_grad(x[rows], y[rows])
                    losses.append(loss)
                    grad_norms = [norm(g) for g in net.weight_grads]
                    if not (math.isfinite(loss) and all(map(math.isfinite, grad_norms))):
                        result.diverge(epoch, store, run_id, time.perf_counter() - start)
                        break
                    sums += grad_norms
                    last = number == steps - 1
                    before = [w.copy() for w in net.weights] if last else None
                    optimizer.step(net.grads)
                    if last:
                        updates = [norm(w - b) for w, b in zip(net.weights, before, strict=True)]
                if result.diverged:
                    break
                stats = layer_stats(net, list(sums / steps), updates)
                val_loss, val_acc = evaluate(net, val.x, val.y)
                result.add_epoch(epoch, float(np.mean(losses)), val_loss, val_acc, stats,
                                 config.target_accuracy, store, run_id,
                                 time.perf_counter() - start)
                if bar is not None:
                    bar.update(task, advance=1,
                               description=f"{label} loss {result.train_loss[-1]:.3g}")
                if result.diverged:
                    break
        finally:
            end_progress(bar, task, own)

    result.finish(time.perf_counter() - start,
                  lambda: evaluate(net, splits.test.x, splits.test.y), store, run_id)
    return result


def end_progress(bar, task, own: bool) -> None:
    """Stop a bar ``progress_bar`` made, or remove its task from the caller's bar."""
    if bar is not None and own:
        bar.stop()
    elif bar is not None:
        bar.remove_task(task)


def progress_bar(progress, label: str, total: int):
    """(progress, task id, whether we own it) or (None, None, False)."""
    if progress is False or progress is None:
        return None, None, False
    if progress is True:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        return bar, bar.add_task(label, total=total), True
    return progress, progress.add_task(label, total=total), False
