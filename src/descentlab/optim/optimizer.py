"""The NumPy face of the optimizers: parameter groups, state, ``step(grads)``, state dicts.

An :class:`Optimizer` owns no math: its class names a :class:`~descentlab.optim.rules.Rule`,
and ``step`` hands each parameter, its gradient, its state arrays and the rule's per-step
coefficients to an executor. The semantics around the math (parameter groups, per-parameter
step counts, ``None`` gradients, lazily created state) are torch.optim's.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import repeat
from operator import itemgetter, setitem
from typing import Any, ClassVar

import numpy as np

from .executors import make_executor
from .executors.finite import nonfinite_positions
from .executors.ndarray_fields import gradients_agree
from .rules import Rule
from .rules._base import scalar_type

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NONFINITE = ("raise", "skip", "off")


class Optimizer:
    """Base class: subclasses set ``rule`` and pass their hyperparameters as ``defaults``.

    Args:
        params: a sequence of NumPy arrays (float32 or float64, any shape), or of
            ``(name, array)`` pairs (as torch's ``named_parameters()`` gives them: errors and
            checkpoints then use the names), or a sequence of dicts
            ``{"params": [...], **hyperparameters}`` (parameter groups, as in torch.optim); a
            group's missing hyperparameters come from ``defaults``.
        defaults: the hyperparameters of the algorithm.
        executor: ``"fused"`` (the default: each step one compiled, multithreaded pass over
            all parameters of a group, see ``executors.fused``) or ``"arraywise"`` (the
            readable NumPy reference; same numbers, slower, and no compilation).
        nonfinite: what a step does when a gradient holds a NaN or an infinity: ``"raise"``
            (the default) raises FloatingPointError naming the parameters; ``"skip"`` skips
            the whole step and counts it in ``skipped_steps`` (optax's ``apply_if_finite``);
            either way nothing is changed. ``"off"`` does not look, as torch.optim does not:
            a NaN gradient makes NaN parameters. The check reads every gradient once more:
            on arrays too big for the caches plain SGD's step takes up to 1.6x as long and
            Adam's 1.3x (BENCHMARKS.md, "The non-finite check").

    The arrays passed in *are* the parameters: ``step`` updates them in place.

    Attributes:
        param_groups: list of dicts, one per group: ``"params"`` and the hyperparameters. They
            may be changed between steps (that is how schedules work); they are checked again at
            the next step.
        state: per-parameter state, keyed by the parameter's position in group order (the same
            keys ``state_dict`` uses): ``"step"`` and the rule's state arrays.
        skipped_steps: steps skipped for non-finite gradients (``nonfinite="skip"``).
    """

    rule: ClassVar[Rule]

    def __init__(
        self,
        params: Iterable[Any],
        defaults: Mapping[str, Any],
        *,
        executor: str = "fused",
        nonfinite: str = "raise",
    ) -> None:
        if nonfinite not in NONFINITE:
            raise ValueError(f"nonfinite must be one of {', '.join(map(repr, NONFINITE))}, "
                             f"got {nonfinite!r}")
        self.executor = make_executor(executor)
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        self.defaults = dict(defaults)
        self._check_group(self.defaults)
        groups = _as_groups(params)
        prepared = [self._prepare_group(group, i) for i, group in enumerate(groups)]
        _refuse_shared(prepared)
        self.param_groups: list[dict[str, Any]] = prepared
        self.state: dict[int, dict[str, Any]] = {}
        first = 0
        for group in prepared:
            self._create_eager_state(group, first)
            first += len(group["params"])

    # -- construction ------------------------------------------------------------------------

    def _prepare_group(self, group: Mapping[str, Any], number: int) -> dict[str, Any]:
        """A complete, checked copy of group ``number`` (the caller's dict is left alone)."""
        if "params" not in group:
            raise ValueError(f"parameter group {number} has no 'params' key")
        params = group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(params)
        names = group.get("param_names")
        named = [_is_named(item) for item in params]
        if any(named):
            if not all(named):
                raise TypeError(f"parameter group {number} mixes (name, array) pairs and bare "
                                "arrays; name all of its parameters or none")
            if names is not None:
                raise ValueError(f"parameter group {number} names its parameters twice (pairs "
                                 "and 'param_names')")
            names = [name for name, _ in params]
            params = [p for _, p in params]
        for index, p in enumerate(params):
            _check_param(p, _label(names, index, number))
        full = {**self.defaults, **group, "params": params}
        if names is not None:
            names = list(names)
            if len(names) != len(params) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"parameter group {number}: 'param_names' must hold one string "
                                 f"per parameter ({len(params)})")
            full["param_names"] = names
        self._check_group(full)
        return full

    def _check_group(self, group: Mapping[str, Any]) -> None:
        check_hyperparameters(type(self), group)

    def _where(self, position: int) -> str:
        """How errors name the parameter at ``position`` (group order): by its name when the
        optimizer was given names, by group and index otherwise."""
        for number, group in enumerate(self.param_groups):
            count = len(group["params"])
            if position < count:
                return _label(group.get("param_names"), position, number)
            position -= count
        return f"parameter {position}"

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a parameter group (e.g. layers unfrozen during fine-tuning), as torch does."""
        group = self._prepare_group(param_group, len(self.param_groups))
        _refuse_shared([*self.param_groups, group])
        self.param_groups.append(group)
        self._create_eager_state(group, len(self._params()) - len(group["params"]))

    def _create_eager_state(self, group: dict[str, Any], first: int) -> None:
        """State for every parameter of ``group`` (whose first one has position ``first``)."""
        if not self.rule.eager:
            return
        for offset, p in enumerate(group["params"]):
            state = self.state[first + offset] = dict(self.rule.scalars)
            self._create_arrays(state, p, group)

    # -- stepping ----------------------------------------------------------------------------

    def _params(self) -> list[np.ndarray]:
        return [p for group in self.param_groups for p in group["params"]]

    def step(self, grads: Sequence[np.ndarray | None]) -> None:
        """Update every parameter in place from its gradient.

        Args:
            grads: one entry per parameter, in group order (the order of ``param_groups``
                and, within a group, of its ``"params"``). ``None`` leaves that parameter and
                its state untouched, as torch does for a parameter whose ``.grad`` is None.

        Everything is checked before anything changes: on an error (ValueError or TypeError
        for bad input, FloatingPointError for a non-finite gradient) the parameters and the
        state are as they were.
        """
        params = self._params()
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(
                f"step() got {len(grads)} gradients for {len(params)} parameters; pass one per "
                "parameter in group order (None for a parameter without gradient)"
            )
        for group in self.param_groups:
            self._check_group(group)
        # One compiled pass answers for the usual case (stepping many small arrays must not pay
        # a Python check per array); anything else is looked at one by one. The parameters are
        # checked again: ``param_groups`` may have been edited since.
        all_present = gradients_agree(params, grads)
        if not all_present:
            for index, (p, g) in enumerate(zip(params, grads, strict=True)):
                try:
                    _check_param(p, "it")
                    if g is not None:
                        grads[index] = _checked_grad(p, g)
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{self._where(index)}: {exc}") from None
        bad = nonfinite_positions(grads) if self.nonfinite != "off" else None
        if bad:
            if self.nonfinite == "skip":
                self.skipped_steps += 1
                return
            shown = ", ".join(self._where(i) for i in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise FloatingPointError(
                f"non-finite gradient (NaN or infinity) for {shown}{more}; nothing was changed "
                "(nonfinite='skip' skips such steps instead)")

        first = 0
        for number, group in enumerate(self.param_groups):
            count = len(group["params"])
            self._step_group(number, group, first, grads[first : first + count], all_present)
            first += count

    def _step_group(
        self, number: int, group: dict[str, Any], first: int, grads: list, all_present: bool
    ) -> None:
        """Step the parameters of group ``number`` (positions from ``first``) that have a
        gradient: the ones whose scalar state agrees share one call to the executor."""
        members = (
            range(len(grads)) if all_present else [i for i, g in enumerate(grads) if g is not None]
        )
        if not members:
            return
        if group.get("scalar_dtype") == "param":
            # the step's scalars depend on the dtype: one batch per dtype
            members = list(members)
            kinds = {group["params"][i].dtype for i in members}
            if len(kinds) > 1:
                for kind in sorted(kinds, key=str):
                    subset = [i for i in members if group["params"][i].dtype == kind]
                    self._step_members(number, group, first, grads, subset, (number, kind.str))
                return
        self._step_members(number, group, first, grads, members, (number,))

    def _step_members(self, number: int, group: dict[str, Any], first: int, grads: list,
                      members: Sequence[int], key: tuple) -> None:
        """Step the parameters of group ``number`` at positions ``members`` (all of one dtype
        where the group computes its scalars in the parameters' dtype); ``key`` names this
        batch for the executor's plans."""
        rule = self.rule
        everyone = len(members) == len(grads)
        params = group["params"] if everyone else [group["params"][i] for i in members]
        grads = grads if everyone else [grads[i] for i in members]
        states = list(map(self.state.get, range(first, first + len(grads)))) if everyone else [
            self.state.get(first + i) for i in members
        ]
        active = frozenset(rule.active_arrays(group))
        scalar = scalar_type(group, params[0].dtype)

        columns = _uniform_columns(states, rule, active)
        if columns is not None:  # the usual case: one batch, no state to create
            h = self._advance(group, states, states[0] if states[0] is not None else {}, scalar)
            self.executor.run(rule, h, (*key, 0), params, grads, columns)
            return

        states = [s if s is not None else dict(rule.scalars) for s in states]
        for bucket, rows in enumerate(_agreeing(states, tuple(rule.scalars), active)):
            bucket_states = [states[r] for r in rows]
            h = self._advance(group, bucket_states, bucket_states[0], scalar)
            for r, state in zip(rows, bucket_states, strict=True):
                self._create_arrays(state, params[r], group)
            columns = [
                [state[name] for state in bucket_states] if name in active else None
                for name in rule.arrays
            ]
            self.executor.run(rule, h, (*key, bucket), [params[r] for r in rows],
                              [grads[r] for r in rows], columns)
            for r, state in zip(rows, bucket_states, strict=True):
                if state:  # plain SGD keeps no state at all, as in torch
                    self.state[first + members[r]] = state

    def _advance(self, group: Mapping[str, Any], states: list[dict], model: dict,
                 scalar: type) -> Any:
        """This step's coefficients for ``states``, which agree with ``model`` on everything
        the rule's coefficients read, computed in ``scalar``; advances their scalar state
        (the step count)."""
        scratch = dict(model)
        h = self.rule.coefficients(group, scratch, scalar)
        for name in self.rule.scalars:
            # a loop in C: this runs for every parameter at every step
            deque(map(setitem, states, repeat(name), repeat(scratch[name])), maxlen=0)
        return h

    def _create_arrays(self, state: dict[str, Any], p: np.ndarray, group: Mapping) -> None:
        fill = self.rule.fill(group) if self.rule.fill is not None else {}
        for name in self.rule.active_arrays(group):
            if name not in state:
                state[name] = np.full_like(p, fill.get(name, 0.0), order="C")

    # -- state dicts -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimizer's state as plain dicts, arrays and numbers.

        ``{"state": {position: {"step": int, name: array, ...}}, "param_groups": [...]}``, the
        layout of torch.optim's state dict, with each group's ``"params"`` given as positions.
        """
        groups = []
        position = 0
        for group in self.param_groups:
            count = len(group["params"])
            groups.append(
                {**copy.deepcopy({k: v for k, v in group.items() if k != "params"}),
                 "params": list(range(position, position + count))}
            )
            position += count
        state = {
            index: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for index, s in self.state.items()
        }
        return {"state": state, "param_groups": groups, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict` (of an optimizer over the same shapes).

        Shapes, dtypes, group sizes and hyperparameters are all checked first; on any
        mismatch a ValueError names it and this optimizer is left unchanged.
        """
        try:
            saved_groups = list(state_dict["param_groups"])
            saved_state = dict(state_dict["state"])
        except (KeyError, TypeError) as exc:
            raise ValueError("a state dict needs 'state' and 'param_groups' entries") from exc
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"the state dict has {len(saved_groups)} parameter groups, this optimizer "
                f"has {len(self.param_groups)}"
            )
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i} has {len(saved['params'])} parameters in the state "
                    f"dict and {len(group['params'])} here"
                )
            merged = {**group, **{k: v for k, v in saved.items() if k != "params"}}
            self._check_group(merged)
            new_groups.append(merged)

        params = self._params()
        group_of = [group for group in new_groups for _ in group["params"]]
        known = set(self.rule.arrays) | set(self.rule.scalars)
        new_state: dict[int, dict[str, Any]] = {}
        for key, entry in saved_state.items():
            index = int(key)
            if not 0 <= index < len(params):
                raise ValueError(f"the state dict has state for parameter {key}, which does "
                                 f"not exist (there are {len(params)})")
            p = params[index]
            needed = set(self.rule.scalars) | set(self.rule.active_arrays(group_of[index]))
            if needed - set(entry):
                raise ValueError(f"the state of parameter {index} lacks "
                                 f"{sorted(needed - set(entry))}")
            restored: dict[str, Any] = {}
            for name, value in entry.items():
                if name not in known:
                    raise ValueError(f"unknown state entry {name!r} for parameter {index} "
                                     f"({self.rule.name} keeps {sorted(known)})")
                if name in self.rule.scalars:
                    restored[name] = type(self.rule.scalars[name])(value)
                    continue
                value = np.asarray(value)
                if value.shape != p.shape or value.dtype != p.dtype:
                    raise ValueError(
                        f"state {name!r} of parameter {index} has shape {value.shape} and dtype "
                        f"{value.dtype}; the parameter has shape {p.shape} and dtype {p.dtype}"
                    )
                restored[name] = np.array(value, order="C", copy=True)
            new_state[index] = restored

        skipped = state_dict.get("skipped_steps", 0)
        if isinstance(skipped, bool) or not isinstance(skipped, (int, np.integer)) or skipped < 0:
            raise ValueError(f"skipped_steps must be a count >= 0, got {skipped!r}")
        self.param_groups = new_groups
        self.state = new_state
        self.skipped_steps = int(skipped)
        self.executor.forget()  # let go of the replaced arrays

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        lines.append(")")
        return "\n".join(lines)


def _uniform_columns(
    states: Sequence[dict | None], rule: Rule, active: Collection[str]
) -> list[list[np.ndarray] | None] | None:
    """The state arrays, one column per name of ``rule.arrays`` (None if inactive), when every
    state exists with the same scalars and all active arrays; None otherwise."""
    if not rule.scalars and not active:  # plain SGD: no state at all
        return [None] * len(rule.arrays)
    if None in states:
        return None
    if rule.scalars:
        values = list(map(itemgetter(*rule.scalars), states))
        if values.count(values[0]) != len(values):
            return None
    try:
        return [
            list(map(itemgetter(name), states)) if name in active else None
            for name in rule.arrays
        ]
    except KeyError:  # an array to create first
        return None


def _agreeing(
    states: Sequence[Mapping[str, Any]], scalars: tuple[str, ...], active: Collection[str]
) -> list[list[int]]:
    """Rows of ``states`` grouped by what a rule's coefficients read: the scalar state and
    whether every active array exists (one group, unless steps were skipped or options
    changed)."""
    values = [tuple(s[name] for name in scalars) for s in states] if scalars else None
    complete = [active <= s.keys() for s in states]
    if (values is None or values.count(values[0]) == len(values)) and (
        complete.count(complete[0]) == len(complete)
    ):
        return [list(range(len(states)))]
    groups: dict[tuple, list[int]] = {}
    for row, key in enumerate(zip(values or [()] * len(states), complete, strict=True)):
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def _as_groups(params: Iterable[Any]) -> list[Mapping[str, Any]]:
    if isinstance(params, (np.ndarray, Mapping)) or not isinstance(params, Iterable):
        raise TypeError(
            "params should be a sequence of NumPy arrays or of parameter-group dicts, but got "
            f"{type(params).__name__}"
        )
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list")
    if all(isinstance(item, Mapping) for item in items):
        return items
    if any(isinstance(item, Mapping) for item in items):
        raise TypeError("params mixes arrays and parameter-group dicts; use one or the other")
    return [{"params": items}]


def check_hyperparameters(cls: type, group: Mapping[str, Any]) -> None:
    """Raise ValueError, naming the argument and its value, for a bad hyperparameter of
    ``cls`` (an optimizer class with a ``rule``) in ``group``."""
    cls.rule.check(group)
    for name in _flags(cls):
        if name in group and not isinstance(group[name], (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {group[name]!r}")


@functools.cache
def _flags(cls: type) -> tuple[str, ...]:
    """The hyperparameters of ``cls`` that are switches: those whose default is a bool."""
    return tuple(name for name, parameter in inspect.signature(cls).parameters.items()
                 if isinstance(parameter.default, bool))


def _is_named(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def _check_param(p: Any, where: str) -> None:
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{where} is a {type(p).__name__}, not a NumPy array")
    if p.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{where} has dtype {p.dtype} ({_kind(p.dtype)}); supported: float32, "
                        "float64")
    if not p.flags.writeable:
        raise ValueError(f"{where} is read-only; the optimizer updates parameters in place")


def _kind(dtype: np.dtype) -> str:
    return {"b": "boolean", "i": "integer", "u": "integer", "c": "complex",
            "f": "floating point"}.get(dtype.kind, "not a number type")


def _label(names: Sequence[str] | None, index: int, number: int) -> str:
    """How errors name parameter ``index`` of group ``number``: by name if it has one."""
    if names is not None and index < len(names):
        return f"parameter {names[index]!r}"
    return f"parameter {index} of group {number}"


def _refuse_shared(groups: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a parameter in two groups, or a name given to two parameters."""
    arrays: set[int] = set()
    names: set[str] = set()
    for group in groups:
        for p in group["params"]:
            if id(p) in arrays:
                raise ValueError("some parameters appear in more than one parameter group")
            arrays.add(id(p))
        for name in group.get("param_names") or ():
            if name in names:
                raise ValueError(f"parameter name {name!r} is used twice")
            names.add(name)


def _checked_grad(p: np.ndarray, g: Any) -> np.ndarray:
    """``g`` if it is a valid gradient for ``p``; a NumPy scalar (what ``np.sum`` returns) is
    accepted for a 0-d parameter."""
    if isinstance(g, np.generic):
        g = np.asarray(g)
    if not isinstance(g, np.ndarray):
        raise TypeError(f"its gradient is a {type(g).__name__}, not a NumPy array")
    if g.dtype != p.dtype:
        raise ValueError(f"its gradient has dtype {g.dtype} ({_kind(g.dtype)}); the parameter "
                         f"has {p.dtype}")
    if g.shape != p.shape:
        raise ValueError(f"its gradient has shape {g.shape}; the parameter has {p.shape}")
    if np.shares_memory(g, p):
        # the step writes the parameter while it reads the gradient: the result would depend
        # on the order of the writes
        raise ValueError("its gradient shares memory with the parameter itself; pass a "
                         "separate array")
    return g
