"""descentlab's optimizers as torch.optim.Optimizer subclasses.

Each class here takes the installed torch.optim class's constructor signature (the same
positional order, names and defaults, read from torch itself), plus descentlab's switches and
``convention=`` as keyword-only arguments. Its step runs the algorithm's one rule
(``descentlab.optim.rules``): on CPU tensors the fused executor works on zero-copy NumPy views
of the parameters, gradients and state, on torch's own OpenMP threads (``torch_threads``), and
after a group's first step a ``StepPlan`` (``step_plan``) spares the per-parameter walk; on
other devices the same update function runs on the tensors with torch operations
(``torch_math``).

State is torch.optim's: ``self.state[p]`` holds tensors under torch's keys (``step`` as a
0-dim tensor, ``exp_avg``, ``exp_avg_sq``, ...), so ``state_dict()`` and ``load_state_dict()``
are torch.optim's own and checkpoints move between the two in both directions.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from torch.autograd.graph import increment_version

from .. import optim as _optim
from ..optim import conventions
from ..optim.executors.fused import Fused
from ..optim.optimizer import check_hyperparameters
from ..optim.rules import Rule
from ..optim.rules._base import scalar_type
from .roots import torch_float32_sqrt_emulated
from .step_hooks import hooked
from .step_plan import StepPlan
from .torch_math import step_tensors
from .torch_threads import torch_launch

# torch.optim's implementation flags: which values mean something here
_FLAG_DEFAULTS = {"foreach": None, "fused": None, "capturable": False, "differentiable": False}
EXECUTORS = ("auto", "fused", "torch")
# the dtypes descentlab.torch steps (and the monitor's compiled passes read), as NumPy's
NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


def _scalar_dtype() -> torch.dtype:
    """The dtype torch.optim keeps ``step`` and ``mu_product`` in (its ``_get_scalar_dtype``)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class _ScalarState(dict):
    """A parameter's scalar state (step, mu_product) for a rule's ``coefficients``.

    torch.optim keeps these in 0-dim tensors of ``_scalar_dtype()``, updates them in place
    and reads them back: NAdam's μ-product is a float32 product (by default) before the step
    uses it. ``rounding`` tells the rules so (``rules._base.multiply_state``).
    """

    def __init__(self, values: dict[str, Any], dtype: torch.dtype) -> None:
        super().__init__(values)
        self.rounding = (lambda x: float(np.float32(x))) if dtype == torch.float32 else float


class TorchOptimizer(torch.optim.Optimizer):
    """Base class: a descentlab rule driven through torch.optim's Optimizer.

    Subclasses set ``numpy_class`` (the NumPy face's class of the same algorithm, which owns
    the rule, the switches and the presets).

    Args beyond torch.optim's:
        executor: ``"auto"`` (the default: the fused NumPy executor on CPU tensors, torch
            operations on other devices), ``"fused"`` (CPU only) or ``"torch"`` (torch
            operations everywhere; slower on the CPU, the same numbers).

    torch.optim's ``foreach`` and ``fused`` flags choose whose rounding a step follows, never
    the speed (every step here is one fused pass). A model's loop amplifies a one-unit
    difference (up to 9e-4 after 50 steps of the test CNN), and torch.optim's implementations
    of one algorithm differ by such units on the CPU:

    - its single-tensor and foreach steps take float32 roots from ``torch.sqrt`` (MKL's, one
      unit low in about 0.6 % of elements; see ``.roots``), its fused kernels (``fused=True``:
      SGD, Adagrad, Adam, AdamW) round them correctly (``vsqrtps``). A group with
      ``fused=True`` gets correctly rounded roots, the others torch.sqrt's.
    - its foreach NAdam divides by the bias correction after the root, the single-tensor one
      before it; the rule follows the group's ``foreach``. (Its foreach RAdam also forms the
      step otherwise; that one is not followed, and stays within 7e-7 of it on the test
      models.)
    """

    numpy_class: ClassVar[type]
    rule: ClassVar[Rule]

    def __init__(self, params: Any, defaults: dict[str, Any], executor: str = "auto") -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"Invalid executor value: {executor!r} (executor must be one of "
                             f"{', '.join(map(repr, EXECUTORS))})")
        self.executor = executor
        self._start_executor()
        super().__init__(params, defaults)
        if self.rule.eager:  # torch's Adagrad creates its state with the optimizer
            for group in self.param_groups:
                for p in group["params"]:
                    self._create_state(self.state[p], p, group)

    def _start_executor(self) -> None:
        """The fused executor and what it keeps between steps (none of it is saved)."""
        self._fused = Fused(launch=torch_launch())
        self._views: dict[int, tuple[torch.Tensor, int, np.ndarray]] = {}
        self._plans: dict[int, StepPlan] = {}  # param group number -> its step plan

    # -- construction ------------------------------------------------------------------------

    def _patch_step_function(self) -> None:
        """torch.optim's, with :func:`.step_hooks.hooked` as the step's wrapper: the same
        hooks, and the profiler range only while a profiler runs (it cost 5-33 µs a step).
        torch wraps a class's step only where it is not marked hooked, so it keeps this one."""
        cls = type(self)
        if not getattr(cls.step, "hooked", None):
            cls.step = hooked(cls.step)
        super()._patch_step_function()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch.optim's, plus descentlab's checks of the hyperparameters and parameters."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group)
            for index, p in enumerate(group["params"]):
                _check_parameter(p, f"parameter {index} of group {len(self.param_groups) - 1}")
        except (TypeError, ValueError):
            self.param_groups.pop()
            raise

    def _check_group(self, group: dict[str, Any]) -> None:
        check_hyperparameters(self.numpy_class, group)
        for flag, default in _FLAG_DEFAULTS.items():
            value = group.get(flag, default)
            if flag in ("capturable", "differentiable") and value:
                raise ValueError(f"{flag}=True is not supported by descentlab.torch."
                                 f"{type(self).__name__}: " + _REFUSED[flag])
            if flag in ("foreach", "fused") and value not in (None, True, False):
                raise ValueError(f"{flag} must be None, True or False, got {value!r}")

    def __getstate__(self) -> dict[str, Any]:
        """torch.optim's, plus the executor (pickle and copy.deepcopy go through here)."""
        return {**super().__getstate__(), "executor": self.executor}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a torch.optim checkpoint has no descentlab switches: keep this optimizer's own
        state = dict(state)
        executor = state.pop("executor", getattr(self, "executor", "auto"))
        super().__setstate__(state)
        self.executor = executor
        self._start_executor()
        for group in self.param_groups:
            for name, value in self.defaults.items():
                group.setdefault(name, value)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch.optim's; hyperparameters are checked, and nothing changes if they are bad."""
        for group in state_dict["param_groups"]:
            self._check_group({**self.defaults, **group})
        super().load_state_dict(state_dict)
        self._views.clear()  # the state tensors are new
        self._plans.clear()

    # -- stepping ----------------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step for every parameter that has a gradient (``p.grad`` not None).

        Args:
            closure: re-evaluates the model and returns the loss (as in torch.optim).

        Everything is checked before anything changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work: list[tuple] = []
        plans = self._plans if self.executor != "torch" else {}  # it may have been switched
        for number, group in enumerate(self.param_groups):
            plan = plans.get(number)
            if plan is None:
                self._check_group(group)
            else:
                plan.check(group, self._check_group, self.rule.active_arrays)
                found = plan.ready(group, self.state)
                if found is not None:
                    work.append((number, group, plan, found))
                    continue
            members = []
            for index, p in enumerate(group["params"]):
                if p.grad is not None:
                    _check_gradient(p, group, number, index)
                    members.append(p)
            work.append((number, group, None, members))
        for number, group, plan, found in work:
            if plan is not None:
                # no torch operation on this path, so no autograd mode to set (torch.no_grad()
                # costs 3-6 µs, a tenth of a small model's step)
                self._step_planned(number, group, plan, *found)
            elif found:
                with torch.no_grad():
                    self._step_group(number, group, found)
        return loss

    def _step_group(self, number: int, group: dict[str, Any],
                    members: list[torch.Tensor]) -> None:
        """Step ``members``: the ones whose scalar state, state arrays, device and dtype agree
        share one call (the usual case: all of them)."""
        rule = self.rule
        active = tuple(rule.active_arrays(group))
        self._plans.pop(number, None)
        if not rule.scalars and not active:  # plain SGD: torch keeps no state at all
            self._run(rule, rule.coefficients(group, {}, float), members, active, (number, 0))
            self._keep_plan(number, group, members, active)
            return
        batches: dict[tuple, list[torch.Tensor]] = {}
        for p in members:
            state = self.state[p]
            scalars = tuple(_as_number(state[k]) if k in state else v
                            for k, v in rule.scalars.items())
            # the dtype the scalar state is kept in (a checkpoint may bring another)
            kept = next((state[k].dtype for k in rule.scalars if k in state), _scalar_dtype())
            present = tuple(name in state for name in active)
            batches.setdefault((p.device, p.dtype, kept, scalars, present), []).append(p)
        for batch, ((device, dtype, kept, scalars, present), params) in enumerate(
                batches.items()):
            model, h = self._coefficients(
                group, dict(zip(rule.scalars, scalars, strict=True)), kept,
                [name for name, here in zip(active, present, strict=True) if here], dtype,
                kernels=device.type == "cpu" and self.executor != "torch")
            for p in params:
                state = self.state[p]
                self._create_state(state, p, group)
                for name in rule.scalars:
                    state[name].fill_(model[name])
            self._run(rule, h, params, active, (number, batch))
        if len(batches) == 1:
            self._keep_plan(number, group, members, active)

    def _keep_plan(self, number: int, group: dict[str, Any], members: list[torch.Tensor],
                   active: tuple[str, ...]) -> None:
        """After a full step of group ``number`` as one batch: keep its step plan, if the
        fused executor stepped every member (CPU, contiguous), for the next step to reuse."""
        if (members[0].device.type == "cpu" and self.executor != "torch"
                and self._fused.fully_fused((number, 0))):
            self._plans[number] = StepPlan(group, self.state, active, tuple(self.rule.scalars))

    def _step_planned(self, number: int, group: dict[str, Any], plan: StepPlan,
                      addresses: list[int], scalars: dict[str, float]) -> None:
        """The step of a group whose plan ``ready`` confirmed: the same coefficients as
        ``_step_group`` computes, one kernel call on the gradients' data ``addresses``.

        While the hyperparameters are those of the step before, a rule without scalar state
        (SGD) or a steady one (``Rule.steady``: RMSprop, Adadelta, ...) has the same
        coefficients: they are kept, and only the step count advances here. That saves 5 µs a
        step, and 12-14 µs after a kernel that streamed the caches (2^20 elements)."""
        h = plan.coefficients
        if h is None:
            model, h = self._coefficients(group, scalars, plan.kept or _scalar_dtype(),
                                          plan.active, plan.dtype, kernels=True)
            if not plan.scalar_views or self.rule.is_steady(group):
                plan.coefficients = h
        else:  # a steady rule's one scalar is its step count (SGD has none)
            model = {name: value + 1 for name, value in scalars.items()}
        plan.write_scalars(model)
        # as in ``_run`` (parameters, state and scalar state), but before the kernel: nothing
        # reads the counters in between, and after a kernel that streamed the caches the same
        # call took 5-7 µs longer (2^20 elements)
        increment_version(plan.tensors)
        self._fused.run_again(self.rule, h, (number, 0), addresses)

    def _coefficients(self, group: dict[str, Any], scalars: dict[str, Any], kept: torch.dtype,
                      present: Iterable[str], dtype: torch.dtype,
                      kernels: bool) -> tuple[_ScalarState, Any]:
        """The rule's coefficients for one step of a batch of ``dtype`` parameters whose
        scalar state is ``scalars`` (kept in tensors of ``kept``) and whose state arrays
        ``present`` exist; and the scalar state after the step. ``kernels``: the batch runs
        in the fused kernels (else with torch operations)."""
        model = _ScalarState(scalars, kept)
        model.update(dict.fromkeys(present, True))
        h = self.rule.coefficients(group, model, scalar_type(group, NUMPY_DTYPES[dtype]))
        if dtype is torch.float32 and "torch_sqrt" in h._fields and not group.get("fused"):
            # torch.sqrt's rounding: torch operations have it; the kernels where they can
            # emulate it (see .roots)
            h = h._replace(torch_sqrt=not kernels or torch_float32_sqrt_emulated())
        return model, h

    def _numpy(self, t: torch.Tensor) -> np.ndarray:
        """A zero-copy NumPy view of CPU tensor ``t``, the same object from step to step (the
        fused executor reuses its plan only for the same arrays) until ``t``'s memory moves."""
        found = self._views.get(id(t))
        if found is not None and found[0] is t and found[1] == t.data_ptr():
            return found[2]
        view = t.detach().numpy()
        self._views[id(t)] = (t, t.data_ptr(), view)  # t is kept, so its id is not reused
        return view

    def _create_state(self, state: dict[str, Any], p: torch.Tensor,
                      group: dict[str, Any]) -> None:
        """torch.optim's state for ``p``, where it is missing: 0-dim scalar tensors and
        arrays shaped like ``p`` (zeros, or the rule's fill value)."""
        for name, start in self.rule.scalars.items():
            if name not in state:
                state[name] = torch.tensor(float(start), dtype=_scalar_dtype())
        fill = self.rule.fill(group) if self.rule.fill is not None else {}
        for name in self.rule.active_arrays(group):
            if name not in state:
                state[name] = torch.full_like(p, fill.get(name, 0.0),
                                              memory_format=torch.preserve_format)

    def _run(self, rule: Rule, h: Any, params: list[torch.Tensor], active: tuple[str, ...],
             key: tuple) -> None:
        """One step of ``params`` (all on one device) with the coefficients ``h``; ``key``
        names the batch for the fused executor's plans."""
        device = params[0].device
        on_cpu = device.type == "cpu"
        if self.executor == "fused" and not on_cpu:
            raise ValueError(f"executor='fused' runs on CPU tensors only; these parameters are "
                             f"on {device} (use executor='auto')")
        if on_cpu and self.executor != "torch":
            columns = [[self._numpy(self.state[p][name]) for p in params]
                       if name in active else None for name in rule.arrays]
            views = [self._numpy(p) for p in params]
            grads = [p.grad.detach().numpy() for p in params]
            self._fused.run(rule, h, key, views, grads, columns)
            # written through raw memory: tell autograd, as torch.optim's in-place operations
            # do (a graph that saved a parameter before the step then refuses to backward)
            increment_version([*params, *(self.state[p][name] for name in active
                                          for p in params)])
            return
        for p in params:
            state = self.state[p] if active else {}
            step_tensors(rule, h, p.detach(), p.grad.detach(),
                         [state[name] if name in active else None for name in rule.arrays])


_REFUSED = {
    "capturable": "it exists for CUDA graph capture, which these optimizers do not support",
    "differentiable": "these optimizers do not record the update in autograd",
}


def _as_number(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value


def _check_parameter(p: Any, where: str) -> None:
    if not isinstance(p, torch.Tensor):
        raise TypeError(f"{where} is a {type(p).__name__}, not a torch.Tensor")
    if p.dtype not in NUMPY_DTYPES:
        raise TypeError(f"{where} has dtype {p.dtype}; descentlab.torch supports torch.float32 "
                        "and torch.float64")
    if p.is_sparse:
        raise TypeError(f"{where} is sparse; descentlab.torch supports dense tensors only")


def _check_gradient(p: torch.Tensor, group: dict[str, Any], number: int, index: int) -> None:
    """Refuse a gradient the step cannot take; the message names parameter ``index`` of group
    ``number`` (by its name when the group has ``param_names``)."""
    g = p.grad
    if g.is_sparse:
        raise RuntimeError(f"{_name(group, number, index)} has a sparse gradient; "
                           "descentlab.torch supports dense gradients only (as torch.optim's "
                           "Adam does)")
    if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
        raise ValueError(f"{_name(group, number, index)}: its gradient has shape "
                         f"{tuple(g.shape)}, dtype {g.dtype} on {g.device}; the parameter has "
                         f"{tuple(p.shape)}, {p.dtype} on {p.device}")
    if p.dtype not in NUMPY_DTYPES:  # changed since the optimizer was made
        _check_parameter(p, _name(group, number, index))


def _name(group: dict[str, Any], number: int, index: int) -> str:
    names = group.get("param_names")
    return f"parameter {names[index]!r}" if names else f"parameter {index} of group {number}"


# -- the classes -----------------------------------------------------------------------------

_IMPLEMENTATION = ("executor", "nonfinite")


def _face(name: str) -> type[TorchOptimizer]:
    """The torch face of descentlab.optim's class ``name``.

    Its signature is torch.optim's (for Lion, which torch lacks, the NumPy class's), followed
    by the NumPy class's switches and ``convention`` as keyword-only arguments, and
    ``executor``.
    """
    numpy_class = _optim.OPTIMIZERS[name]
    torch_class = getattr(torch.optim, name, None)
    ours = inspect.signature(numpy_class).parameters
    if torch_class is not None:
        theirs = dict(inspect.signature(torch_class).parameters)
    else:
        theirs = {k: v for k, v in ours.items() if k not in (*_IMPLEMENTATION, "convention")}
    extra = [v.replace(kind=inspect.Parameter.KEYWORD_ONLY) for k, v in ours.items()
             if k not in theirs and k not in _IMPLEMENTATION]
    parameters = [*theirs.values(), *extra,
                  inspect.Parameter("executor", inspect.Parameter.KEYWORD_ONLY, default="auto",
                                    annotation=str)]
    signature = inspect.Signature(parameters)
    hyperparameters = [k for k in ours if k not in ("params", "convention", *_IMPLEMENTATION)]
    flags = [k for k in theirs if k in _FLAG_DEFAULTS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        given = dict(bound.arguments)
        bound.arguments.update(conventions.apply(name, given.get("convention", "torch"), given))
        bound.apply_defaults()
        values = bound.arguments
        defaults = {k: values[k] for k in hyperparameters}
        defaults.update({k: values[k] for k in flags})
        if name == "AdamW":  # torch's AdamW is Adam with the decay always decoupled
            defaults["decoupled_weight_decay"] = True
        TorchOptimizer.__init__(self, values["params"], defaults, executor=values["executor"])

    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                    *parameters])
    doc = (f"{name}: torch.optim.{name}'s signature and defaults, descentlab's implementation."
           if torch_class is not None else
           f"{name}: not in torch.optim; descentlab.optim.{name}'s signature and defaults.")
    cls = type(name, (TorchOptimizer,), {
        "__init__": __init__,
        "__signature__": signature,
        "__doc__": f"{doc}\n\n{inspect.cleandoc(numpy_class.__doc__ or '')}",
        "__module__": __name__,
        "numpy_class": numpy_class,
        "rule": numpy_class.rule,
    })
    return cls


NAMES = ("SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
         "Lion")
OPTIMIZERS: dict[str, type[TorchOptimizer]] = {name: _face(name) for name in NAMES}

SGD = OPTIMIZERS["SGD"]
Adagrad = OPTIMIZERS["Adagrad"]
RMSprop = OPTIMIZERS["RMSprop"]
Adadelta = OPTIMIZERS["Adadelta"]
Adam = OPTIMIZERS["Adam"]
AdamW = OPTIMIZERS["AdamW"]
Adamax = OPTIMIZERS["Adamax"]
NAdam = OPTIMIZERS["NAdam"]
RAdam = OPTIMIZERS["RAdam"]
Lion = OPTIMIZERS["Lion"]
