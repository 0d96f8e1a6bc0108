"""descentlab's trajectories equal torch.optim's, for every case of the configuration table.

Three references: the golden file recorded by tools/make_golden.py with torch.optim (float64
and float32), torch.optim itself when installed, and for Lion a transcription of Chen et al.
(2023), Algorithm 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import max_relative_difference, require_torch
from optim_cases import LION_CASES, STEPS, TORCH_CASES, problem_data
from reference_torch import STATE_KEYS, torch_trajectory
from trajectories import descentlab_trajectory

GOLDEN_PATH = Path(__file__).parent / "data" / "golden_torch.npz"
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}
# Algorithms that take no square root: every operation they do rounds as torch's CPU kernels
# round it (fused multiply-adds included), so their trajectories are equal to the last bit.
# The others meet torch's sqrt, which is not correctly rounded (see test_torch_face).
NO_ROOT = ("SGD", "Adamax")
DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN_PATH, allow_pickle=False) as data:
        yield {key: data[key] for key in data.files}


def assert_same_trajectory(ours: dict, ref: dict, dtype: np.dtype, label: str,
                           tolerance: float | None = None) -> None:
    tolerance = TOLERANCE[dtype] if tolerance is None else tolerance
    assert ref, f"{label}: empty reference"
    for key, expected in ref.items():
        got = ours[key]
        if key.endswith("/step"):
            np.testing.assert_array_equal(got, expected, err_msg=f"{label} {key}")
            continue
        # NaN marks a state the reference had not created yet: ours must be absent too.
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected),
                                      err_msg=f"{label} {key}: state created at another step")
        # Rounding differences scale with the largest value along the path, not with the
        # current one (a coordinate crossing zero would otherwise look infinitely wrong).
        scale = float(np.nanmax(np.abs(expected), initial=0.0))
        for t in range(expected.shape[0]):
            err = max_relative_difference(got[t], expected[t], scale)
            assert err <= tolerance, f"{label} {key} step {t}: relative difference {err:.3g}"


def _case_ids(cases):
    return [c.name for c in cases]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_ids(TORCH_CASES))
def test_matches_golden_torch_trajectory(case, dtype, golden):
    prefix = f"{case.name}/{dtype.name}/"
    ref = {key[len(prefix):]: value for key, value in golden.items() if key.startswith(prefix)}
    ours = descentlab_trajectory(case, dtype)
    _rename_torch_keys(ours, case.algorithm)
    assert_same_trajectory(ours, ref, dtype, case.name,
                           tolerance=0.0 if case.algorithm in NO_ROOT else None)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", TORCH_CASES, ids=_case_ids(TORCH_CASES))
def test_matches_torch_live(case, dtype):
    require_torch()
    ref = torch_trajectory(case, dtype)
    ours = descentlab_trajectory(case, dtype)
    _rename_torch_keys(ours, case.algorithm)
    assert_same_trajectory(ours, ref, dtype, case.name)


def _rename_torch_keys(ours: dict, algorithm: str) -> None:
    # descentlab's state names are torch's; this only checks that claim for each algorithm.
    for key in list(ours):
        name = key.split("/", 1)[1]
        if name not in ("param", "step"):
            assert name in STATE_KEYS[algorithm], f"{algorithm} state {name!r} is not torch's"


def test_golden_file_covers_the_table(golden):
    assert str(golden["torch_version"]).startswith("2.")
    for case in TORCH_CASES:
        for dtype in DTYPES:
            assert f"{case.name}/{dtype.name}/0/param" in golden, case.name


# -- Lion: not in torch.optim; the reference is the paper's Algorithm 2, transcribed ---------


def lion_algorithm2(case, dtype) -> dict:
    """Chen et al. (2023), Algorithm 2, written directly from the paper, loop by loop.

    given β₁, β₂, λ, η; initialise θ₀, m₀ ← 0
    while θ_t not converged:
        g_t ← ∇_θ f(θ_{t−1})
        c_t ← β₁ m_{t−1} + (1 − β₁) g_t                  (update model parameters)
        θ_t ← θ_{t−1} − η_t (sign(c_t) + λ θ_{t−1})
        m_t ← β₂ m_{t−1} + (1 − β₂) g_t                  (update EMA of g_t)
    """
    params, grads = problem_data(dtype)
    groups = case.groups(list(range(len(params))))
    settings = {}
    for group in groups:
        merged = {**case.kwargs, **{k: v for k, v in group.items() if k != "params"}}
        for i in group["params"]:
            settings[i] = merged
    momentum = [np.zeros_like(p, dtype=np.float64) for p in params]
    theta = [p.astype(np.float64) for p in params]
    out = {f"{i}/param": [p.copy()] for i, p in enumerate(theta)}
    for step in range(STEPS):
        for i, g in enumerate(grads[step]):
            if g is not None:
                s = settings[i]
                beta1, beta2 = s.get("betas", (0.9, 0.99))
                eta, lam = s["lr"], s["weight_decay"]
                g = -g.astype(np.float64) if s["maximize"] else g.astype(np.float64)
                c = beta1 * momentum[i] + (1 - beta1) * g
                theta[i] = theta[i] - eta * (np.sign(c) + lam * theta[i])
                momentum[i] = beta2 * momentum[i] + (1 - beta2) * g
            out[f"{i}/param"].append(theta[i].copy())
            out.setdefault(f"{i}/exp_avg", []).append(momentum[i].copy())
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", LION_CASES, ids=_case_ids(LION_CASES))
def test_lion_matches_paper_algorithm_2(case, dtype):
    ref = lion_algorithm2(case, dtype)
    ours = descentlab_trajectory(case, dtype)
    for key, expected in ref.items():
        if key.endswith("exp_avg"):
            # before a parameter's first gradient the paper's m is 0 and ours does not exist
            got = np.where(np.isnan(ours[key]), 0.0, ours[key])
        else:
            got = ours[key]
        scale = float(np.max(np.abs(expected), initial=0.0))
        for t in range(expected.shape[0]):
            err = max_relative_difference(got[t], expected[t], scale)
            assert err <= TOLERANCE[dtype], f"{case.name} {key} step {t}: {err:.3g}"
