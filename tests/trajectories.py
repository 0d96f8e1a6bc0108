"""Run a configuration case through descentlab and record it as reference_torch does."""

from __future__ import annotations

import numpy as np
from optim_cases import STEPS, Case, problem_data

import descentlab.optim as optim


def descentlab_trajectory(case: Case, dtype: np.dtype, cls: type | None = None) -> dict:
    """The trajectory of ``case`` in descentlab, in reference_torch's layout."""
    params, grads = problem_data(dtype)
    cls = cls or getattr(optim, case.algorithm)
    opt = cls(case.groups(params), **case.kwargs)
    names = opt.rule.arrays
    out: dict[str, list] = {f"{i}/param": [p.copy()] for i, p in enumerate(params)}
    for step in range(STEPS):
        opt.step(grads[step])
        for i, p in enumerate(params):
            out[f"{i}/param"].append(p.copy())
            state = opt.state.get(i, {})
            out.setdefault(f"{i}/step", []).append(state.get("step", 0))
            for name in names:
                value = state.get(name)
                out.setdefault(f"{i}/{name}", []).append(
                    np.full(p.shape, np.nan, dtype) if value is None else value.copy())
    return {k: np.asarray(v) if k.endswith("/step") else np.stack(v) for k, v in out.items()}
