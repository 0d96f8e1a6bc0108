"""A group's step plan: the per-parameter walk of a step done once, then only confirmed.

torch.optim's step walks every parameter in Python: its gradient, checks, its state. So does
descentlab.torch's first step of a group (``TorchOptimizer._step_group``), which also makes
NumPy views and sorts the parameters into batches. For a model of many small tensors that walk
costs more than the arithmetic: ten 1024-element tensors took ~180 µs a step, of which the
kernel is ~10 µs, against ~100-140 µs for torch's fused Adam.

After a step in which the whole group ran as one fused batch, the optimizer keeps a
:class:`StepPlan` of what it found. At the next step :meth:`StepPlan.ready` confirms, with
cheap identity and address comparisons, that nothing it relied on has changed:

- the group holds the same parameters, and the same ones have gradients;
- each parameter's state is the same dict holding the same tensors, and no tensor's memory has
  moved (``param.data = ...`` and ``module.to(...)`` move it);
- the gradients are dense, C-contiguous CPU tensors of their parameters' shapes and dtype;
- every parameter's scalar state (``step``, ``mu_product``) holds one value, read from memory.

Anything else (a parameter without a gradient this time, a replaced state tensor, a
checkpoint loaded, a strided gradient) sends the step down the full path, which checks it,
names what is wrong, and makes a new plan where it can.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch


class StepPlan:
    """What a fully fused step of one param group found, for the next step to confirm.

    Args:
        group: the param group, just stepped.
        state: the optimizer's ``state`` (parameter -> dict of tensors).
        active: the state arrays the group's options use.
        scalars: the names of the rule's scalar state (``step``...).
    """

    def __init__(self, group: dict[str, Any], state: Any, active: tuple[str, ...],
                 scalars: tuple[str, ...]) -> None:
        self.params = list(group["params"])
        self.hyperparameters = _plain_values(group)  # as checked before this step
        # a step's coefficients ``h``, kept by a rule without scalar state or a steady one
        # while the hyperparameters stay those of the step that computed them (``check`` drops
        # them on a change; see ``TorchOptimizer._step_planned``)
        self.coefficients: Any = None
        self._objects = (tuple(group), tuple(group.values()))  # see ``_same_objects``
        self.present = [p.grad is not None for p in self.params]
        self.members = list(itertools.compress(self.params, self.present))
        self.everyone = all(self.present)
        self.active = active
        self.same_arrays = True  # the group asks for ``active`` (see ``check``)
        # .get: plain SGD keeps no state, and ``state`` is a defaultdict
        self.states = [state.get(p) for p in self.members]
        self.names = (*active, *scalars)
        self.entries = [s[name] for s in self.states for name in self.names]
        # everything whose memory the fused plan or the scalar views point into
        self.tensors = [*self.members, *self.entries]
        self.pointers = [t.data_ptr() for t in self.tensors]
        self.shapes = [p.shape for p in self.members]
        self.dtype = self.members[0].dtype
        # the dtype the scalar state is kept in (a checkpoint may bring another than torch's)
        self.kept = self.states[0][scalars[0]].dtype if scalars else None
        # 0-dim NumPy views of each scalar state tensor: reading or writing one costs ~0.1 µs,
        # against ~1 µs for ``tensor.item()`` or ``tensor.fill_()``
        self.scalar_views = {name: [s[name].detach().numpy() for s in self.states]
                             for name in scalars}

    def check(self, group: dict[str, Any], check: Callable[[dict[str, Any]], None],
              active: Callable[[dict[str, Any]], Iterable[str]]) -> None:
        """``check(group)``, unless the group's hyperparameters equal those last checked; and
        whether they still ask for the state arrays the plan has (``active(group)``, the rule's
        ``active_arrays``), since ``ready`` must refuse otherwise.

        The check costs 3-11 µs a step, more than the rest of a step's confirmation. Only
        plain values are compared: a tensor (an lr tensor, say) can change in place, so a
        group holding one is checked at every step.
        """
        if self.hyperparameters is not None and self._same_objects(group):
            return  # plain values are immutable: the same objects, the same values
        values = _plain_values(group)
        if values is None or values != self.hyperparameters:
            self.coefficients = None
            check(group)
            self.hyperparameters = values
            self.same_arrays = tuple(active(group)) == self.active
        self._objects = (tuple(group), tuple(group.values()))

    def _same_objects(self, group: dict[str, Any]) -> bool:
        """Whether ``group`` holds the very key and value objects it held at the last check: a
        comparison by identity, cheaper than collecting the values and comparing them (a
        step's check went from 7.5-11 µs to 5-6 µs on caches a 2^20-element step had
        streamed through)."""
        keys, values = self._objects
        return (len(group) == len(keys) and all(map(operator.is_, group, keys))
                and all(map(operator.is_, group.values(), values)))

    def ready(self, group: dict[str, Any],
              state: Any) -> tuple[list[int], dict[str, float]] | None:
        """The gradients' data addresses and the shared scalar state for this step, or None
        when the step must take the full path (anything differs from what the plan found, or
        the last ``check`` found that the group now asks for other state arrays)."""
        params = group["params"]
        if len(params) != len(self.params) or not all(map(operator.is_, params, self.params)):
            return None
        grads = [p.grad for p in params]
        if [g is not None for g in grads] != self.present or not self.same_arrays:
            return None
        if not self.everyone:
            grads = list(itertools.compress(grads, self.present))
        states = [state.get(p) for p in self.members]
        if not all(map(operator.is_, states, self.states)):
            return None
        entries = [s.get(name) for s in states for name in self.names]
        if not all(map(operator.is_, entries, self.entries)):
            return None
        if [t.data_ptr() for t in self.tensors] != self.pointers:
            return None
        dtype, strided = self.dtype, torch.strided
        if [g.shape for g in grads] != self.shapes or not all(
                g.dtype is dtype and g.layout is strided and g.is_cpu and g.is_contiguous()
                for g in grads):
            return None
        scalars = {}
        for name, views in self.scalar_views.items():
            values = [v.item() for v in views]
            if values.count(values[0]) != len(values):
                return None
            scalars[name] = values[0]
        return [g.data_ptr() for g in grads], scalars

    def write_scalars(self, values: dict[str, float]) -> None:
        """Store this step's scalar state (rounded to the dtype it is kept in, as
        ``Tensor.fill_`` rounds) in every member's tensors.

        Written through NumPy, the tensors' ``_version`` counters do not move here; the
        optimizer moves them after the step, with the parameters' and the state arrays'.
        ``ready`` reads the values themselves, not the counters.
        """
        for name, views in self.scalar_views.items():
            value = values[name]
            for view in views:
                view[()] = value


_PLAIN = (float, int, bool, str, type(None))


def _plain_values(group: dict[str, Any]) -> tuple | None:
    """``group``'s (name, value) pairs other than its parameters, or None when a value is not
    a plain immutable one (a float, int, bool, str, None, or a tuple of those)."""
    pairs = tuple((k, v) for k, v in group.items() if k != "params")
    for _, v in pairs:
        if not (type(v) in _PLAIN
                or (type(v) is tuple and all(type(x) in _PLAIN for x in v))):
            return None
    return pairs
