"""Studies: a grid of networks x optimizers, each optimizer's learning rate chosen by a short
log-grid search on the validation split, every run recorded in the results store.

All runs of a study share the data split, the initial weights of a given network (its seed)
and the order of the batches, so that two runs differ only in what the study varies.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import optim
from ..data import Splits
from ..nn import MLP, MLPSpec
from .store import Store
from .train import RunResult, TrainConfig, progress_bar, train


@dataclass(frozen=True)
class OptimizerChoice:
    """An optimizer of ``descentlab.optim`` under a label, with fixed keyword arguments (not
    the learning rate, which the search chooses) and the learning rates to try.

    ``batch_size`` overrides the study's (None in the study means full batch): "GD" is SGD
    with the whole training split as its batch.
    """

    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    lr_grid: tuple[float, ...] = ()
    batch_size: int | None | str = "study"  # "study": the study's batch size

    def __post_init__(self) -> None:
        if self.name not in optim.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; choose one of "
                             f"{', '.join(optim.OPTIMIZERS)}")
        if "lr" in self.kwargs:
            raise ValueError(f"{self.label}: give learning rates in lr_grid, not in kwargs")
        if not self.lr_grid or not all(math.isfinite(lr) and lr > 0 for lr in self.lr_grid):
            raise ValueError(f"{self.label}: lr_grid must hold positive learning rates, got "
                             f"{self.lr_grid!r}")

    def build(self, params, lr: float):
        return optim.OPTIMIZERS[self.name](params, lr=lr, **self.kwargs)


def log_grid(center: float, decades_below: int = 2, decades_above: int = 1) -> tuple[float, ...]:
    """Powers of ten around ``center``: log_grid(1e-3) = (1e-5, 1e-4, 1e-3, 1e-2)."""
    # rounded to 12 significant digits: 1e-3 * 10 is 0.010000000000000002 otherwise
    return tuple(float(f"{center * 10.0 ** k:.12g}")
                 for k in range(-decades_below, decades_above + 1))


@dataclass(frozen=True)
class Choice:
    """What the learning-rate search found: every tried rate's final validation accuracy and
    loss (NaN when the run diverged) and the chosen rate."""

    lr: float
    tried: tuple[tuple[float, float, float], ...]  # (lr, val accuracy, val loss)


def choose_lr(choice: OptimizerChoice, spec: MLPSpec, splits: Splits, config: TrainConfig,
              net_seed: int, store: Store | None = None, study: str = "") -> Choice:
    """Train for ``config.epochs`` with each rate of ``choice.lr_grid`` and keep the one with
    the best final validation accuracy (then the lowest validation loss; a diverged run is
    never chosen unless every run diverged, in which case the smallest rate is)."""
    tried = []
    for lr in choice.lr_grid:
        net = MLP(spec, net_seed)
        run_id = None
        if store is not None:
            run_id = store.start_run(study, f"{choice.label} lr={lr:g} (search)",
                                     {"role": "search", "optimizer": asdict(choice), "lr": lr,
                                      "network": spec.as_dict(), "train": asdict(config)})
        result = train(net, choice.build(net.params, lr), splits, config, store=store,
                       run_id=run_id)
        accuracy = result.val_accuracy[-1] if result.val_accuracy and not result.diverged \
            else math.nan
        loss = result.val_loss[-1] if result.val_loss and not result.diverged else math.nan
        tried.append((lr, accuracy, loss))
    return pick(choice, tried)


def pick(choice: OptimizerChoice, tried: list[tuple[float, float, float]]) -> Choice:
    """The rate with the best final validation accuracy, then the lowest validation loss,
    among the ``tried`` (lr, accuracy, loss) of a search, NaN where a run diverged; the
    smallest rate of the grid when every run diverged."""
    finite = [t for t in tried if math.isfinite(t[1]) or math.isfinite(t[2])]
    if not finite:
        return Choice(min(choice.lr_grid), tuple(tried))

    def key(t):
        accuracy = t[1] if math.isfinite(t[1]) else -math.inf
        loss = t[2] if math.isfinite(t[2]) else math.inf
        return (-accuracy, loss)

    return Choice(min(finite, key=key)[0], tuple(tried))


@dataclass(frozen=True)
class Study:
    name: str
    networks: Sequence[MLPSpec]
    optimizers: Sequence[OptimizerChoice]
    epochs: int = 30
    search_epochs: int = 5
    batch_size: int | None = 64
    seed: int = 0  # initial weights and batch order
    target_accuracy: float | None = 0.9

    def __post_init__(self) -> None:
        if not self.networks or not self.optimizers:
            raise ValueError(f"study {self.name!r} needs at least one network and one optimizer")
        if not (isinstance(self.search_epochs, int) and self.search_epochs >= 1):
            raise ValueError(f"search_epochs must be a positive integer, got "
                             f"{self.search_epochs!r}")
        TrainConfig(epochs=self.epochs, batch_size=self.batch_size)  # checks both
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy!r}")

    def config(self, choice: OptimizerChoice, epochs: int) -> TrainConfig:
        batch = self.batch_size if choice.batch_size == "study" else choice.batch_size
        return TrainConfig(epochs=epochs, batch_size=batch, seed=self.seed,
                           target_accuracy=self.target_accuracy)


@dataclass
class StudyRun:
    network: MLPSpec
    optimizer: OptimizerChoice
    choice: Choice
    result: RunResult
    run_id: int | None


def run_study(study: Study, splits: Splits, store: Store | None = None,
              progress: bool = False) -> list[StudyRun]:
    """Every network with every optimizer: search the learning rate, then train in full."""
    pairs = list(itertools.product(study.networks, study.optimizers))
    bar, task, _ = progress_bar(progress, study.name, len(pairs))
    runs = []
    try:
        for spec, choice in pairs:
            label = f"{choice.label} | {describe(spec)}"
            config = study.config(choice, study.epochs)
            if bar is not None:
                bar.update(task, description=f"{label}: choosing lr")
            found = choose_lr(choice, spec, splits, study.config(choice, study.search_epochs),
                              study.seed, store, study.name)
            run_id = None
            if store is not None:
                run_id = store.start_run(study.name, label, final_config(
                    choice, found, spec.as_dict(), asdict(config)))
            if bar is not None:
                bar.update(task, description=f"{label}: lr {found.lr:g}")
            net = MLP(spec, study.seed)
            result = train(net, choice.build(net.params, found.lr), splits, config,
                           store=store, run_id=run_id,
                           progress=bar if bar is not None else False, label=label)
            runs.append(StudyRun(spec, choice, found, result, run_id))
            if bar is not None:
                bar.update(task, advance=1)
    finally:
        if bar is not None:
            bar.stop()
    return runs


def final_config(choice: OptimizerChoice, found: Choice, network: dict[str, Any],
                 train: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A final run's configuration in the store (the report reads it): its optimizer, the
    rate the search chose and what it tried, its network and training settings."""
    return {"role": "final", **extra, "optimizer": asdict(choice), "lr": found.lr,
            # JSON has no NaN: a diverged search run is null
            "lr_search": [[v if math.isfinite(v) else None for v in t] for t in found.tried],
            "network": network, "train": train}


def describe(spec: MLPSpec) -> str:
    """A short name: '10x256 sigmoid normal(0.01) +residual +layernorm'."""
    init = f"normal({spec.init_std:g})" if spec.init == "normal" else spec.init
    extras = "".join(f" +{name}" for name in ("residual", "layernorm") if getattr(spec, name))
    return f"{spec.depth}x{spec.width} {spec.activation} {init}{extras}"
