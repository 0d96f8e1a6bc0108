"""``GradientMonitor``: the lab's per-layer diagnostics for any ``torch.nn.Module``.

Every ``every`` optimizer steps (step 0 included) the monitor records, per module:

- for a module that owns parameters (Linear, Conv2d, LSTM, LayerNorm, ...): the norm of their
  gradient, their norm, and the norm of the step's update with the update-to-weight ratio
  ‖ΔW‖/‖W‖ (the lab's health signal, see ``lab.diagnostics``);
- for every leaf module and every module owning parameters: the mean and standard deviation
  of its output in the step's training forward pass (over all its calls in that step); for
  an activation module also the fraction of saturated outputs (Sigmoid, Tanh) or of dead
  units (the ReLU family: not positive for any example of the batch), with the NumPy lab's
  thresholds (``nn.activations``);
- the count of non-finite gradient entries and output entries.

After each record the gradient norms of the parameter modules, input side first, go through
the lab's detector; a vanishing or exploding finding is raised as a ``GradientWarning``
naming the modules, once each time the finding changes. With a ``store`` the records go into
the results store's ``modules`` table (within a second of being made, and at ``close``), so
that ``descentlab report`` renders them.

How it hooks in: the optimizer's step hooks (torch's ``register_step_pre_hook`` and
``register_step_post_hook``) read the gradients before a recorded step and the weights after
it; a forward hook (torch's global one, filtered to the model's modules) exists only during
the training forward pass of a recorded step, so the steps in between cost nothing. Without
``optimizer=``, the monitor hooks every optimizer globally and follows the ones that hold the
model's parameters. Activations computed with functions (``torch.relu(x)`` inside
``forward``) are not modules and cannot be seen.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook

from ..lab.diagnostics import EXPLODING, VANISHING, Finding, detect
from .output_stats import kind_of, output_stats, pooled
from .parameter_stats import ParameterStats

# records reach the store at most this long after they are made: a commit costs about a
# millisecond (as much as a small model's training step), so they are written in batches
WRITE_EVERY_S = 1.0


class GradientWarning(UserWarning):
    """Vanishing or exploding gradients found by a ``GradientMonitor``."""


def _norm(tensors: list[torch.Tensor]) -> float:
    """The norm of several tensors taken as one vector."""
    if not tensors:
        return math.nan
    norms = torch._foreach_norm([t.detach() for t in tensors])
    return math.sqrt(sum(float(n) ** 2 for n in norms))


def parameter_modules(model: torch.nn.Module) -> list[tuple[str, list[torch.Tensor]]]:
    """The modules of ``model`` owning parameters that train, in registration order (input
    side first for a model built in order), with those parameters; the root module is named
    after its class."""
    found = []
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if params:
            found.append((name or type(model).__name__, params))
    return found


def grad_norms(model: torch.nn.Module) -> tuple[list[str], list[float]]:
    """The names of ``model``'s parameter modules and the norms of their gradients (0 where
    a module got none), after a backward pass."""
    modules = parameter_modules(model)
    return ([name for name, _ in modules],
            [_norm([p.grad for p in params if p.grad is not None])
             if any(p.grad is not None for p in params) else 0.0 for _, params in modules])


class GradientMonitor:
    """Record per-module gradient, weight, update and activation statistics of ``model``
    every ``every`` optimizer steps, warn about vanishing or exploding gradients, and write
    the records to a results store.

    Parameters
    ----------
    model: the ``torch.nn.Module`` to watch.
    every: record at steps 0, every, 2*every, ... (counted in optimizer steps).
    optimizer: the optimizer that trains ``model``; without it, any optimizer holding the
        model's parameters is followed (torch's global optimizer hooks).
    store: a results folder (path) or a ``descentlab.lab.Store``; None keeps the records in
        memory only (``records``).
    name: the run's name in the store (and its study's).
    vanishing, exploding: the detector's thresholds on the first parameter module's gradient
        norm over the last's.
    run_id: with a ``store``, record under this existing run (the caller starts and
        completes it) instead of starting one of the monitor's own.
    warn: raise ``GradientWarning`` when the finding changes.
    max_records: how many records ``records`` keeps in memory (the store keeps all).

    Use it as a context manager, or call ``close()`` when training ends: it removes the hooks
    and completes the run in the store.
    """

    def __init__(self, model: torch.nn.Module, every: int = 10, *,
                 optimizer: torch.optim.Optimizer | None = None,
                 store: str | Path | Any = None, name: str = "monitor",
                 run_id: int | None = None, vanishing: float = VANISHING,
                 exploding: float = EXPLODING, warn: bool = True,
                 max_records: int = 10_000) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"GradientMonitor watches a torch.nn.Module, got "
                            f"{type(model).__name__}")
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        if not 0 < vanishing < 1 < exploding:
            raise ValueError(f"thresholds must satisfy 0 < vanishing < 1 < exploding, got "
                             f"{vanishing!r} and {exploding!r}")
        self.model, self.every = model, every
        self.vanishing, self.exploding, self.warn = vanishing, exploding, warn
        self.max_records = max_records
        # every named module (the root is called after its class); those owning parameters
        # that train take part in the gradient statistics
        self.modules = [(name or type(model).__name__, module)
                        for name, module in model.named_modules()]
        self.owned = {id(module): [p for p in module.parameters(recurse=False)
                                   if p.requires_grad] for _, module in self.modules}
        self.layers = [name for name, _ in parameter_modules(model)]
        self._kinds = {id(module): kind_of(module) for _, module in self.modules}
        if not self.layers:
            raise ValueError("the model has no parameters that require gradients: nothing "
                             "to monitor")
        # every parameter that trains, with its module
        self._params = [(key, p) for key, params in self.owned.items() for p in params]
        self._ids = {id(p) for _, p in self._params}
        self._parameter_stats = ParameterStats([p for _, p in self._params])
        self.steps = 0  # optimizer steps taken so far
        self.records: list[dict[str, Any]] = []  # per recorded step: step, modules, finding
        self.findings: list[tuple[int, Finding]] = []  # the steps where the finding changed
        self._activations: dict[int, list[torch.Tensor]] = {}  # this step's outputs
        self._pending: dict[int, dict[str, Any]] | None = None
        self._forward_hook: Any = None
        # the modules whose outputs are measured: leaves and those owning parameters
        self._watched = {id(module) for _, module in self.modules
                         if self.owned[id(module)] or not any(module.children())}
        self._followed: dict[int, bool] = {}
        self._started = time.perf_counter()
        self._closed = False
        self._unwritten: list[tuple[int, list[dict[str, Any]]]] = []  # records not in the store
        self._written_at = self._started

        self._store, self._own_store, self.run_id = None, False, run_id
        self._own_run = run_id is None
        if store is not None:
            self._open_store(store, name)
        elif run_id is not None:
            raise ValueError("run_id names a run in a store: give the store too")
        if optimizer is not None:
            self._step_hooks = [optimizer.register_step_pre_hook(self._before_step),
                                optimizer.register_step_post_hook(self._after_step)]
        else:
            from torch.optim.optimizer import (
                register_optimizer_step_post_hook,
                register_optimizer_step_pre_hook,
            )

            self._step_hooks = [register_optimizer_step_pre_hook(self._before_step),
                                register_optimizer_step_post_hook(self._after_step)]
        self._arm()

    # -- the store -----------------------------------------------------------------------------

    def _open_store(self, store, name: str) -> None:
        from ..lab.store import Store

        if isinstance(store, Store):
            self._store = store
        else:
            self._store, self._own_store = Store(store), True
        if not self._own_run:
            return
        config = {"role": "monitor", "model": type(self.model).__name__, "every": self.every,
                  "modules": [n for n, _ in self.modules], "layers": self.layers,
                  "thresholds": {"vanishing": self.vanishing, "exploding": self.exploding}}
        self.run_id = self._store.start_run(name, name, config)

    def close(self, status: str = "finished") -> None:
        """Remove every hook and complete the run in the store (``status``: "finished" or
        "diverged"). Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._disarm()
        for handle in self._step_hooks:
            handle.remove()
        if self._store is not None:
            self._write()
        if self._store is not None and self._own_run:
            finding = self.findings[-1][1] if self.findings else None
            self._store.finish_run(self.run_id, status,
                                   wall_s=time.perf_counter() - self._started,
                                   epochs=self.steps, finding=finding.kind if finding else "",
                                   message=finding.message if finding else "")
        if self._store is not None and self._own_store:
            self._store.close()

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close("finished" if kind is None else "failed")

    # -- hooks ---------------------------------------------------------------------------------

    def _arm(self) -> None:
        """A forward hook for the coming recorded step's training forward pass: one global
        hook, filtered to the watched modules, costs one registration where a hook per module
        cost one each (a record's Python work runs on caches the training step has just
        emptied, so each operation counts)."""
        self._activations = {}
        if self._forward_hook is None:
            self._forward_hook = register_module_forward_hook(self._forward)

    def _disarm(self) -> None:
        if self._forward_hook is not None:
            self._forward_hook.remove()
            self._forward_hook = None

    def _forward(self, module, inputs, output) -> None:
        if id(module) not in self._watched or not (torch.is_grad_enabled() and module.training):
            return  # another model's module, or an evaluation pass between steps
        if isinstance(output, (tuple, list)):  # an RNN's (output, hidden)
            output = output[0] if output and isinstance(output[0], torch.Tensor) else None
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            # kept, not measured: the step's outputs are measured together before the step
            # (a module called several times in one step, such as a recurrent cell, a shared
            # activation or gradient accumulation, is measured over all its calls)
            self._activations.setdefault(id(module), []).append(output.detach())

    def _activation_stats(self) -> dict[int, tuple[float, float, float, int]]:
        """Per module seen in this step's forward passes: the mean, standard deviation and
        inactive fraction of its outputs, and their count of non-finite entries."""
        keys = [key for key, outputs in self._activations.items() for _ in outputs]
        stats = output_stats([self._kinds[key] for key in keys],
                             [y for outputs in self._activations.values() for y in outputs])
        calls: dict[int, list] = {}
        for key, entry in zip(keys, stats, strict=True):
            calls.setdefault(key, []).append(entry)
        return {key: pooled(parts) for key, parts in calls.items()}

    def _follows(self, optimizer) -> bool:
        known = self._followed.get(id(optimizer))
        if known is None:
            known = any(id(p) in self._ids for group in optimizer.param_groups
                        for p in group["params"])
            self._followed[id(optimizer)] = known
        return known

    def _before_step(self, optimizer, args, kwargs) -> None:
        if self.steps % self.every or not self._follows(optimizer):
            return
        self._disarm()
        activations = self._activation_stats()
        self._activations = {}
        # a module whose parameters got no gradient (unused in this step) has no gradient
        # norm and takes no part in the detector
        grad_squares: dict[int, float] = {}
        weight_squares: dict[int, float] = {}
        for (key, _), grad, weight in zip(self._params, *self._parameter_stats.before(),
                                          strict=True):
            if grad is not None:
                grad_squares[key] = grad_squares.get(key, 0.0) + grad
            weight_squares[key] = weight_squares.get(key, 0.0) + weight
        rows = {}
        for position, (name, module) in enumerate(self.modules):
            key = id(module)
            mean, std, inactive, bad = activations.get(key, (math.nan, math.nan, math.nan,
                                                             None))
            if not self.owned[key] and bad is None:
                continue  # neither parameters nor an output seen in this step
            grad_norm = math.sqrt(grad_squares[key]) if key in grad_squares else None
            nonfinite = None
            if grad_norm is not None:
                nonfinite = 0 if math.isfinite(grad_norm) else sum(
                    int((~torch.isfinite(p.grad)).sum()) for k, p in self._params
                    if k == key and p.grad is not None)
            rows[key] = {
                "position": position, "module": name, "kind": type(module).__name__,
                "grad_norm": grad_norm,
                "weight_norm": math.sqrt(weight_squares[key]) if self.owned[key] else None,
                "grad_nonfinite": nonfinite, "act_mean": mean, "act_std": std,
                "inactive": inactive, "act_nonfinite": bad}
        self._pending = rows

    def _after_step(self, optimizer, args, kwargs) -> None:
        if not self._follows(optimizer):
            return
        step = self.steps
        self.steps += 1
        if self._pending is not None:
            self._record(step)
        if self.steps % self.every == 0 and not self._closed:
            self._arm()

    def _record(self, step: int) -> None:
        rows, self._pending = self._pending, None
        squares: dict[int, float] = {}
        for (key, _), update in zip(self._params, self._parameter_stats.after(), strict=True):
            squares[key] = squares.get(key, 0.0) + update
        for key, total in squares.items():
            row = rows[key]
            row["update_norm"] = update = math.sqrt(total)
            row["update_ratio"] = (update / row["weight_norm"] if row["weight_norm"] > 0
                                   else math.nan)
        ordered = sorted(rows.values(), key=lambda r: r["position"])
        layer_rows = [r for r in ordered if r["grad_norm"] is not None]
        finding = detect([r["grad_norm"] for r in layer_rows], self.vanishing, self.exploding,
                         names=[f"{r['module']} ({r['kind']})" for r in layer_rows])
        self.records.append({"step": step, "modules": ordered, "finding": finding})
        if len(self.records) > self.max_records:
            del self.records[0]
        if not self.findings or self.findings[-1][1].kind != finding.kind:
            self.findings.append((step, finding))
            if self.warn and finding.flagged:
                warnings.warn(f"step {step}: {finding.message}", GradientWarning, stacklevel=2)
        if self._store is not None:
            self._unwritten.append((step, ordered))
            if time.perf_counter() - self._written_at >= WRITE_EVERY_S:
                self._write()

    def _write(self) -> None:
        if self._unwritten:
            self._store.add_modules(self.run_id, self._unwritten)
            self._unwritten = []
        self._written_at = time.perf_counter()

    # -- reading -------------------------------------------------------------------------------

    @property
    def finding(self) -> Finding | None:
        """The detector's verdict at the last recorded step."""
        return self.records[-1]["finding"] if self.records else None

    def table(self, step: int | None = None) -> list[dict[str, Any]]:
        """The module rows of the recorded ``step`` (default: the last one)."""
        if not self.records:
            return []
        if step is None:
            return self.records[-1]["modules"]
        for record in self.records:
            if record["step"] == step:
                return record["modules"]
        raise KeyError(f"step {step} was not recorded (every={self.every})")
