"""The vanishing-gradient lab on torch models (``descentlab vanish --backend torch``).

Three tasks, each trained with every chosen optimizer of ``descentlab.torch``, the learning
rate chosen by the lab's search on the validation split (``lab.study``):

- ``cnn-digits``: ``SmallCNN`` on scikit-learn's 8x8 digits, with sigmoid and with relu;
- ``mlp-mnist1d``: a 3 x 256 ``MLP`` on MNIST-1D, with sigmoid and with relu;
- ``rnn-adding``: a tanh RNN against an LSTM on the adding problem at every sequence length
  asked for (10 to 200 by default). The rate is searched at the shortest length and kept for
  the longer ones, where the task gets harder only through the distance the gradient must
  travel. After each epoch the gradient with respect to every time step's hidden state is
  recorded on a validation batch.

Every run goes into the results store like the NumPy lab's: epochs, per-layer statistics (a
layer is a module owning parameters; a ``GradientMonitor`` measures it) and, for the final
runs, the monitor's module records. ``descentlab report`` renders them with the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..lab.diagnostics import LayerStats, detect
from ..lab.study import Choice, OptimizerChoice, final_config, pick
from ..lab.train import RunResult, end_progress, progress_bar
from .models import ADDING_CHANCE, ADDING_TOLERANCE, MLP, Recurrent, SmallCNN, adding_problem
from .monitor import GradientMonitor, _norm, grad_norms, parameter_modules
from .optimizers import OPTIMIZERS

INITIAL_ROWS = 1000  # the gradient at initialisation is taken on this many training rows
TIMESTEP_ROWS = 256  # the gradient through time is taken on this many validation rows
RECORDS_PER_EPOCH = 5  # how often the final runs' monitor records


@dataclass
class TensorSplits:
    """Training, validation and test tensors of one task, and how it is scored."""

    train: tuple[torch.Tensor, torch.Tensor]
    validation: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    kind: str  # "classification" or "adding"

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "classification":
            return torch.nn.functional.cross_entropy(output, y)
        return torch.nn.functional.mse_loss(output, y)

    def correct(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "classification":
            return output.argmax(dim=1) == y
        return (output - y).abs() < ADDING_TOLERANCE


@dataclass(frozen=True)
class Network:
    """One network of a task: how to build it and how the report names it."""

    description: str
    build: Callable[[], torch.nn.Module]
    spec: dict = field(default_factory=dict)  # recorded in the run's configuration


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    epochs: int  # the default training budget
    batch_size: int = 64


TASKS = {
    "cnn-digits": Task("cnn-digits", "a small CNN (two 3x3 convolutions) on digits' 8x8 "
                       "images, sigmoid against relu", epochs=15),
    "mlp-mnist1d": Task("mlp-mnist1d", "a 3 x 256 MLP on MNIST-1D, sigmoid against relu",
                        epochs=20),
    "rnn-adding": Task("rnn-adding", "a tanh RNN against an LSTM (32 units) on the adding "
                       "problem, by sequence length", epochs=6),
}
LENGTHS = (10, 25, 50, 100, 200)
ADDING_EXAMPLES = (6400, 1000, 1000)  # training, validation, test sequences


def _tensors(splits) -> TensorSplits:
    def pair(d):
        return torch.from_numpy(np.ascontiguousarray(d.x)), torch.from_numpy(d.y)
    return TensorSplits(pair(splits.train), pair(splits.validation), pair(splits.test),
                        "classification")


def image_splits(seed: int) -> TensorSplits:
    """digits, split and standardised as the NumPy lab's, as (n, 1, 8, 8) images."""
    from ..data import prepare

    data = _tensors(prepare("digits", seed=seed))
    for name in ("train", "validation", "test"):
        x, y = getattr(data, name)
        setattr(data, name, (x.reshape(-1, 1, 8, 8), y))
    return data


def mnist1d_splits(seed: int) -> TensorSplits:
    from ..data import prepare

    return _tensors(prepare("mnist1d", seed=seed))


def adding_splits(length: int, seed: int) -> TensorSplits:
    """Fresh sequences for each split, from seeds derived from ``seed``."""
    parts = [adding_problem(n, length, seed * 3 + k) for k, n in enumerate(ADDING_EXAMPLES)]
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in parts]
    return TensorSplits(*tensors, kind="adding")


def networks(task: str, length: int | None = None) -> list[Network]:
    """The networks the lab trains on ``task`` (at sequence ``length`` for rnn-adding)."""
    if task == "cnn-digits":
        return [Network(f"CNN {act}", lambda act=act: SmallCNN(10, act),
                        {"outputs": 10, "activation": act}) for act in ("sigmoid", "relu")]
    if task == "mlp-mnist1d":
        return [Network(f"3x256 MLP {act}", lambda act=act: MLP(40, 10, 3, 256, act),
                        {"outputs": 10, "activation": act}) for act in ("sigmoid", "relu")]
    if task == "rnn-adding":
        return [Network(f"{cell.upper()} T={length}", lambda cell=cell: Recurrent(cell),
                        {"outputs": 1, "cell": cell.upper(), "length": length,
                         "chance": ADDING_CHANCE}) for cell in ("rnn", "lstm")]
    raise ValueError(f"unknown torch task {task!r}; choose from {', '.join(TASKS)}")


def build_optimizer(choice: OptimizerChoice, model: torch.nn.Module, lr: float):
    if choice.name not in OPTIMIZERS:
        raise ValueError(f"{choice.label}: descentlab.torch has no {choice.name}; choose "
                         f"from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[choice.name](model.parameters(), lr=lr, **choice.kwargs)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TensorSplits, split: str,
             rows: int = 2000) -> tuple[float, float]:
    """Mean loss and accuracy on a split, in chunks of ``rows``."""
    model.eval()
    x, y = getattr(data, split)
    loss = correct = 0.0
    for start in range(0, len(x), rows):
        output = model(x[start:start + rows])
        target = y[start:start + rows]
        loss += float(data.loss(output, target)) * len(target)
        correct += float(data.correct(output, target).sum())
    model.train()
    return loss / len(x), correct / len(x)


def _layer_stats(names: list[str], norms: list[float], records: list[dict],
                 model: torch.nn.Module) -> list[LayerStats]:
    """A layer per parameter module: its mean gradient norm over the epoch (``norms`` at
    initialisation), its weight norm now, the update of its last recorded step and the
    inactive fraction of the activation module that follows it."""
    weights = {name: _norm(params) for name, params in parameter_modules(model)}
    last = records[-1]["modules"] if records else []
    stats = []
    for number, name in enumerate(names, start=1):
        if records:
            values = [r["grad_norm"] for rec in records for r in rec["modules"]
                      if r["module"] == name and r["grad_norm"] is not None]
            grad = float(np.mean(values)) if values else math.nan
        else:
            grad = norms[number - 1]
        update = next((r.get("update_norm", 0.0) for r in last if r["module"] == name), 0.0)
        stats.append(LayerStats(number, grad, weights[name], update or 0.0,
                                (update or 0.0) / weights[name] if weights[name] else math.nan,
                                _following_activation(last, name)))
    return stats


def _following_activation(rows: list[dict], name: str) -> float:
    """The inactive fraction of the first module after ``name`` that has one, before the next
    module with parameters (a Linear's or Conv's activation)."""
    after = False
    for row in rows:
        if row["module"] == name:
            after = True
        elif after:
            if row["weight_norm"] is not None:
                return math.nan
            if row["inactive"] is not None and not math.isnan(row["inactive"]):
                return row["inactive"]
    return math.nan


def _timesteps(model: torch.nn.Module, data: TensorSplits) -> list[float]:
    """‖∂L/∂h_t‖ on a validation batch."""
    x, y = data.validation
    model.keep_hidden = True
    try:
        model.zero_grad(set_to_none=True)
        data.loss(model(x[:TIMESTEP_ROWS]), y[:TIMESTEP_ROWS]).backward()
        norms = model.hidden_grad_norms()
    finally:
        model.keep_hidden, model.hidden = False, []
        model.zero_grad(set_to_none=True)
    return norms


def train(model: torch.nn.Module, optimizer, data: TensorSplits, *, epochs: int,
          batch_size: int, seed: int, target: float | None = None, store=None,
          run_id: int | None = None, monitor_every: int | None = None,
          progress=False, label: str = "") -> RunResult:
    """Train ``model`` and record what the NumPy lab records (``lab.train``); with
    ``monitor_every`` a ``GradientMonitor`` also writes its module records under ``run_id``.
    A recurrent model's gradient through time is recorded after every epoch."""
    x, y = data.train
    n = len(x)
    batch = min(batch_size, n)
    steps = -(-n // batch)
    generator = torch.Generator().manual_seed(seed)
    recurrent = isinstance(model, Recurrent)
    result = RunResult("finished", 0)
    start = time.perf_counter()

    model.zero_grad(set_to_none=True)
    loss0 = data.loss(model(x[:INITIAL_ROWS]), y[:INITIAL_ROWS])
    loss0.backward()
    names, norms = grad_norms(model)
    model.zero_grad(set_to_none=True)
    result.initial = _layer_stats(names, norms, [], model)
    # a recurrent network's depth is its time: the detector reads the hidden states' gradients
    through_time = _timesteps(model, data) if recurrent else None
    finding = (detect(through_time, unit="time step") if recurrent
               else detect(norms, names=names))
    result.finding, result.message = finding.kind, finding.message
    val_loss, val_acc = evaluate(model, data, "validation")
    if store is not None:
        store.add_epoch(run_id, 0, loss0.item(), val_loss, val_acc, 0.0, result.initial)
        if recurrent:
            store.add_timesteps(run_id, 0, through_time)

    every = max(1, steps // RECORDS_PER_EPOCH) if monitor_every is None else monitor_every
    monitor = GradientMonitor(model, every, optimizer=optimizer, store=store, run_id=run_id,
                              warn=False) if store is not None and run_id is not None else None
    bar, task, own = progress_bar(progress, label or "training", epochs)
    try:
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=generator)
            first_record = len(monitor.records) if monitor else 0
            losses = []
            for number in range(steps):
                rows = order[number * batch:(number + 1) * batch]
                optimizer.zero_grad(set_to_none=True)
                loss = data.loss(model(x[rows]), y[rows])
                loss.backward()
                losses.append(loss.item())
                if not math.isfinite(losses[-1]):
                    result.diverge(epoch, store, run_id, time.perf_counter() - start)
                    break
                optimizer.step()
            if result.diverged:
                break
            records = monitor.records[first_record:] if monitor else []
            stats = _layer_stats(names, norms, records, model) if records else []
            val_loss, val_acc = evaluate(model, data, "validation")
            result.add_epoch(epoch, float(np.mean(losses)), val_loss, val_acc, stats, target,
                             store, run_id, time.perf_counter() - start)
            if store is not None and recurrent and not result.diverged:
                store.add_timesteps(run_id, epoch, _timesteps(model, data))
            if bar is not None:
                bar.update(task, advance=1,
                           description=f"{label} loss {result.train_loss[-1]:.3g}")
            if result.diverged:
                break
    finally:
        if monitor is not None:
            monitor.close()
        end_progress(bar, task, own)
    result.finish(time.perf_counter() - start, lambda: evaluate(model, data, "test"), store,
                  run_id)
    return result


@dataclass(frozen=True)
class TorchStudy:
    """One task of the torch lab: its networks x ``optimizers``."""

    task: str
    optimizers: Sequence[OptimizerChoice]
    epochs: int | None = None  # None: the task's default
    search_epochs: int = 3
    batch_size: int | None = None  # None: the task's default
    seed: int = 0
    target: float | None = 0.9
    lengths: Sequence[int] = LENGTHS  # rnn-adding only

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown torch task {self.task!r}; choose from "
                             f"{', '.join(TASKS)}")
        for choice in self.optimizers:
            if choice.name not in OPTIMIZERS:
                raise ValueError(f"{choice.label}: descentlab.torch has no {choice.name}; "
                                 f"choose from {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.search_epochs, int) and self.search_epochs >= 1):
            raise ValueError(f"search_epochs must be a positive integer, got "
                             f"{self.search_epochs!r}")
        if self.task == "rnn-adding" and (not self.lengths or any(
                not isinstance(t, int) or t < 2 for t in self.lengths)):
            raise ValueError(f"sequence lengths must be integers of at least 2, got "
                             f"{list(self.lengths)!r}")

    @property
    def name(self) -> str:
        return f"{self.task} (torch)"

    def settings(self) -> dict:
        task = TASKS[self.task]
        return {"epochs": self.epochs or task.epochs,
                "batch_size": self.batch_size or task.batch_size, "seed": self.seed}


FULL_BATCH = 2 ** 62  # a batch size no split reaches: every step sees the whole split


def _batch(choice: OptimizerChoice, settings: dict) -> int:
    """The study's batch size, or the whole training split for a full-batch choice (GD)."""
    return FULL_BATCH if choice.batch_size is None else settings["batch_size"]


def _search(study: TorchStudy, choice: OptimizerChoice, network: Network, data: TensorSplits,
            store, settings: dict) -> Choice:
    """The lab's learning-rate search (``lab.study.choose_lr``) for a torch network."""
    tried = []
    for lr in choice.lr_grid:
        torch.manual_seed(study.seed)
        model = network.build()
        run_id = None
        if store is not None:
            run_id = store.start_run(study.name, f"{choice.label} lr={lr:g} (search)",
                                     {"role": "search", "backend": "torch", "lr": lr,
                                      "optimizer": asdict(choice), "network": network.spec})
        result = train(model, build_optimizer(choice, model, lr), data,
                       epochs=study.search_epochs, batch_size=_batch(choice, settings),
                       seed=study.seed, store=store, run_id=run_id)
        ok = result.val_accuracy and not result.diverged
        tried.append((lr, result.val_accuracy[-1] if ok else math.nan,
                      result.val_loss[-1] if ok else math.nan))
    return pick(choice, tried)


def run(study: TorchStudy, store=None, progress: bool = False) -> list[RunResult]:
    """Every network of the task with every optimizer: search the rate, then train."""
    settings = study.settings()
    if study.task == "rnn-adding":
        # shortest first: the rates are searched there and kept for the longer sequences
        plan = [(length, net) for length in sorted(set(study.lengths))
                for net in networks(study.task, length)]
    else:
        plan = [(None, net) for net in networks(study.task)]
    bar, task, _ = progress_bar(progress, study.name, len(plan) * len(study.optimizers))
    found: dict[tuple[str, str], Choice] = {}
    data_of: dict[int | None, TensorSplits] = {}
    results = []
    try:
        for length, network in plan:
            if length not in data_of:
                data_of.clear()  # one length's sequences in memory at a time
                data_of[length] = (adding_splits(length, study.seed) if length is not None
                                   else image_splits(study.seed) if study.task == "cnn-digits"
                                   else mnist1d_splits(study.seed))
            data = data_of[length]
            for choice in study.optimizers:
                label = f"{choice.label} | {network.description}"
                key = (choice.label, network.spec.get("cell", network.description))
                if bar is not None:
                    bar.update(task, description=f"{label}: choosing lr")
                if key not in found:
                    found[key] = _search(study, choice, network, data, store, settings)
                chosen = found[key]
                run_id = None
                if store is not None:
                    run_id = store.start_run(study.name, label, final_config(
                        choice, chosen, {**network.spec, "description": network.description},
                        {**settings, "batch_size": None if choice.batch_size is None
                         else settings["batch_size"], "target_accuracy": study.target},
                        backend="torch", task=study.task))
                torch.manual_seed(study.seed)
                model = network.build()
                if bar is not None:
                    bar.update(task, description=f"{label}: lr {chosen.lr:g}")
                results.append(train(
                    model, build_optimizer(choice, model, chosen.lr), data,
                    epochs=settings["epochs"], batch_size=_batch(choice, settings),
                    seed=study.seed, target=study.target, store=store, run_id=run_id,
                    progress=bar if bar is not None else False, label=label))
                if bar is not None:
                    bar.update(task, advance=1)
    finally:
        if bar is not None:
            bar.stop()
    return results
