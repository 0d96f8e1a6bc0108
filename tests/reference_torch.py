"""Run a configuration case through torch.optim and record its trajectory.

Used by tools/make_golden.py (to write the golden file) and by the live tests (when torch is
installed). Imports torch lazily so the rest of the test suite runs without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optim_cases import Case, problem_data, record_trajectory

# torch.optim's state keys for each algorithm's element-wise state, in descentlab's order.
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "SGD": ("momentum_buffer",),
    "Adagrad": ("sum",),
    "RMSprop": ("square_avg", "grad_avg", "momentum_buffer"),
    "Adadelta": ("square_avg", "acc_delta"),
    "Adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "Adamax": ("exp_avg", "exp_inf"),
    "NAdam": ("exp_avg", "exp_avg_sq"),
    "RAdam": ("exp_avg", "exp_avg_sq"),
}


def torch_trajectory(case: Case, dtype: np.dtype) -> dict[str, np.ndarray]:
    """{"i/param": (STEPS+1, *shape), "i/<state>": (STEPS, *shape) NaN while absent,
    "i/step": (STEPS,)} for every parameter i, from torch.optim in ``dtype``.

    For float64 torch's default dtype is set to float64 while the case runs, so that its
    scalar state (NAdam's mu_product) is float64 as well.
    """
    import torch

    previous_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        return _run(torch, case, dtype)
    finally:
        torch.set_default_dtype(previous_default)


def _run(torch: Any, case: Case, dtype: np.dtype) -> dict[str, np.ndarray]:
    params0, grads = problem_data(dtype)
    params = [torch.tensor(p.copy()) for p in params0]
    opt = getattr(torch.optim, case.algorithm)(case.groups(params), **case.kwargs)

    def step(t: int) -> None:
        for p, g in zip(params, grads[t], strict=True):
            p.grad = None if g is None else torch.tensor(g.copy())
        opt.step()

    def snapshot():
        return [(p.detach().numpy(),
                 {k: v.detach().numpy() for k, v in opt.state.get(p, {}).items()})
                for p in params]

    return record_trajectory(step, snapshot, STATE_KEYS[case.algorithm], dtype)
