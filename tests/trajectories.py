"""Run a configuration case through descentlab and record it as reference_torch does."""

from __future__ import annotations

import numpy as np
from optim_cases import Case, problem_data, record_trajectory

import descentlab.optim as optim


def descentlab_trajectory(
    case: Case, dtype: np.dtype, executor: str = "fused"
) -> dict[str, np.ndarray]:
    """The trajectory of ``case`` in descentlab (layout: ``optim_cases.record_trajectory``)."""
    params, grads = problem_data(dtype)
    opt = getattr(optim, case.algorithm)(case.groups(params), **case.kwargs, executor=executor)

    def snapshot():
        return [(p, opt.state.get(i, {})) for i, p in enumerate(params)]

    return record_trajectory(lambda t: opt.step(grads[t]), snapshot, opt.rule.arrays, dtype)
