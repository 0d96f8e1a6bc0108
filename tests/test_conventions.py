"""``convention="optax" | "keras"`` against trajectories recorded from optax and Keras 3.

The golden files come from ``tools/make_conventions.py`` (optax on JAX's CPU backend, Keras 3
on its torch backend); the cases and the gradients are ``convention_cases``. jax and keras are
not needed here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import max_relative_difference
from convention_cases import CASES, LIBRARIES, SHAPES, STEPS, learning_rate, problem_data

import descentlab.optim as optim
from descentlab.optim import conventions
from descentlab.optim.rules._base import power

DATA = Path(__file__).parent / "data"
FLOAT64_TOLERANCE = 1e-12
FLOAT32_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def golden():
    out = {}
    for library in LIBRARIES:
        with np.load(DATA / f"golden_{library}.npz", allow_pickle=False) as data:
            out[library] = {key: data[key] for key in data.files}
    return out


def trajectory(case, dtype, convention, executor="fused"):
    """descentlab's parameters after every step, [(STEPS + 1, *shape)] per parameter."""
    params, grads = problem_data(np.dtype(dtype))
    kwargs = dict(case.ours)
    if convention == "torch":  # the same lr, so that only the preset differs
        kwargs.setdefault("lr", learning_rate(case, 0))
    opt = optim.OPTIMIZERS[case.algorithm](params, convention=convention, executor=executor,
                                           **kwargs)
    trail = [[p.copy()] for p in params]
    for t, row in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = learning_rate(case, t)
        opt.step(row)
        for i, p in enumerate(params):
            trail[i].append(p.copy())
    return [np.stack(t) for t in trail]


def recorded(golden, case, dtype):
    return [golden[case.library][f"{case.name}/{dtype}/{i}"] for i in range(len(SHAPES))]


def error(ours, theirs) -> float:
    return max(max_relative_difference(o, t) for o, t in zip(ours, theirs, strict=True))


ids = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_float64_matches_the_library(case, golden):
    err = error(trajectory(case, "float64", case.library), recorded(golden, case, "float64"))
    assert err <= FLOAT64_TOLERANCE, f"{case.name}: {err:.3g}"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_float32_matches_the_library(case, golden):
    err = error(trajectory(case, "float32", case.library), recorded(golden, case, "float32"))
    assert err <= FLOAT32_TOLERANCE, f"{case.name}: {err:.3g}"


# scalar_dtype="param" is what brings these within 1e-6 in float32
PARAM_SCALAR_CASES = ["optax/adam", "optax/nadam", "optax/radam", "keras/Adam", "keras/Nadam"]


@pytest.mark.parametrize("name", PARAM_SCALAR_CASES)
def test_float64_scalars_miss_the_librarys_float32(name, golden):
    """Without the switch (torch's Python-float scalars) the float32 trajectory leaves the
    library's: optax and Keras compute 1 − βᵗ from float32(β) = 0.99900001, in float32."""
    case = next(c for c in CASES if c.name == name)
    changed = replace(case, ours={**case.ours, "scalar_dtype": "float64"})
    err = error(trajectory(changed, "float32", case.library), recorded(golden, case, "float32"))
    assert err > 1.5 * FLOAT32_TOLERANCE, f"{name}: {err:.3g}"


@pytest.mark.parametrize("library", LIBRARIES)
def test_float32_powers_are_the_librarys(library, golden):
    """βᵗ in float32, bit for bit as optax (XLA's pow under jit) and Keras (torch.pow) compute
    it for their bias corrections, t = 1..300."""
    betas = [key.split("/", 1)[1] for key in golden[library] if key.startswith("powers/")]
    assert len(betas) >= 4
    for beta in betas:
        theirs = golden[library][f"powers/{beta}"]
        ours = np.array([power(float(beta), t, np.float32) for t in range(1, len(theirs) + 1)],
                        dtype=np.float32)
        different = np.flatnonzero(ours != theirs) + 1
        assert different.size == 0, f"β = {beta}: differs at t = {different[:10]}"


def test_param_scalars_change_nothing_in_float64():
    params, grads = problem_data(np.dtype("float64"))
    runs = []
    for scalar_dtype in ("float64", "param"):
        ps = [p.copy() for p in params]
        opt = optim.RAdam(ps, lr=0.05, eps_placement="outside", scalar_dtype=scalar_dtype)
        for row in grads:
            opt.step(row)
        runs.append(ps)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["Adam", "Adamax", "NAdam", "RAdam"])
def test_a_mixed_dtype_group_steps_each_dtype_with_its_own_scalars(name):
    """One group holding float32 and float64 parameters steps each as a group of its dtype
    alone would (the float32 ones with float32 scalars)."""
    rng = np.random.default_rng(7)
    mixed = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(3),
             rng.standard_normal(4).astype(np.float32)]
    alone = [[mixed[0].copy(), mixed[2].copy()], [mixed[1].copy()]]
    make = optim.OPTIMIZERS[name]
    opts = [make(ps, lr=0.05, convention="optax") for ps in (mixed, *alone)]
    for _ in range(12):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in mixed]
        opts[0].step(grads)
        opts[1].step([grads[0], grads[2]])
        opts[2].step([grads[1]])
    for ours, theirs in zip(mixed, [alone[0][0], alone[1][0], alone[0][1]], strict=True):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_torch_convention_misses_exactly_where_the_preset_changes_the_math(case, golden):
    """The goldens can tell the conventions apart: the same call with the torch convention
    misses wherever the preset changes the computation, and matches where only rounding
    differs (optax's SGD and Adam are torch's)."""
    err = error(trajectory(case, "float64", "torch"), recorded(golden, case, "float64"))
    if case.differs_from_torch:
        assert err > 1e-6, f"{case.name}: torch's convention is within {err:.3g}"
    else:
        assert err <= FLOAT64_TOLERANCE, f"{case.name}: {err:.3g}"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_fused_equals_arraywise_under_every_case(case):
    for dtype, tolerance in (("float64", 1e-13), ("float32", 1e-6)):
        fused = trajectory(case, dtype, case.library, "fused")
        reference = trajectory(case, dtype, case.library, "arraywise")
        assert error(fused, reference) <= tolerance, (case.name, dtype)


def test_every_library_optimizer_is_covered():
    """Each algorithm optax or Keras has is in the golden cases under its convention."""
    for library in LIBRARIES:
        expected = {name for name, presets in conventions.PRESETS.items() if presets[library]}
        covered = {case.algorithm for case in CASES if case.library == library}
        assert covered == expected, (library, expected ^ covered)


def test_golden_files_hold_every_case(golden):
    for case in CASES:
        for dtype in ("float64", "float32"):
            for i, shape in enumerate(SHAPES):
                array = golden[case.library][f"{case.name}/{dtype}/{i}"]
                assert array.shape == (STEPS + 1, *shape) and array.dtype == np.dtype(dtype)


# -- the presets' defaults against the libraries' own signatures ------------------------------

# descentlab name -> the library's argument name(s); values compared after mapping None to 0
ARGUMENTS = {
    "optax": {"lr": "learning_rate", "betas": ("b1", "b2"), "eps": "eps", "alpha": "decay",
              "rho": "rho", "momentum": "momentum", "nesterov": "nesterov",
              "centered": "centered", "weight_decay": "weight_decay",
              "initial_accumulator_value": "initial_accumulator_value",
              "rectify_threshold": "threshold"},
    "keras": {"lr": "learning_rate", "betas": ("beta_1", "beta_2"), "eps": "epsilon",
              "alpha": "rho", "rho": "rho", "momentum": "momentum", "nesterov": "nesterov",
              "centered": "centered", "weight_decay": "weight_decay", "amsgrad": "amsgrad",
              "initial_accumulator_value": "initial_accumulator_value"},
}
# the first case of each algorithm names the library's plain constructor (optax.nadam, not
# optax.nadamw)
FACTORIES: dict[tuple[str, str], str] = {}
for _case in CASES:
    FACTORIES.setdefault((_case.algorithm, _case.library), _case.factory)


@pytest.mark.parametrize("library", LIBRARIES)
def test_preset_defaults_are_the_librarys(library, golden):
    checked = 0
    for algorithm, presets in conventions.PRESETS.items():
        preset = presets[library]
        if preset is None:
            continue
        factory = FACTORIES[(algorithm, library)]
        theirs = json.loads(str(golden[library][f"defaults/{factory}"]))
        for ours, name in ARGUMENTS[library].items():
            if ours not in preset.settings:
                continue
            value = preset.settings[ours]
            if isinstance(name, tuple):
                assert all(n in theirs for n in name), (factory, name)
                assert tuple(value) == tuple(theirs[n] for n in name), (factory, ours)
            elif name not in theirs:
                # no default there: the preset must ask for it, or the library lacks the
                # argument and the preset holds torch's neutral value
                assert value is conventions.REQUIRED or value in (0.0, False), (factory, ours)
                continue
            elif ours == "lr" and theirs[name] is None:
                # optax.adadelta's learning_rate=None skips the scaling, sign flip included
                # (it ascends); the preset asks for an lr instead of copying that
                assert value is conventions.REQUIRED, factory
            else:
                expected = 0.0 if theirs[name] is None else theirs[name]
                assert value == expected, f"{factory} {name}: {theirs[name]!r}, preset {value!r}"
            checked += 1
    assert checked >= 20  # the mapping above really compares something


# -- the switches and presets as a user meets them -----------------------------------------


def test_explicit_arguments_win_over_the_preset():
    w = np.zeros(3)
    opt = optim.Adam([w], convention="keras", eps=1e-8)
    group = opt.param_groups[0]
    assert group["eps"] == 1e-8 and group["eps_placement"] == "hat" and group["lr"] == 1e-3
    assert optim.Adam([w]).param_groups[0]["eps_placement"] == "outside"


def test_positional_arguments_count_as_given():
    opt = optim.SGD([np.zeros(2)], 0.5, 0.9, convention="keras")
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["lr_in_momentum"] is True


def test_adamw_takes_its_own_preset_not_adams():
    group = optim.AdamW([np.zeros(2)], convention="keras").param_groups[0]
    assert group["weight_decay"] == 0.004 and group["decoupled_weight_decay"] is True
    group = optim.AdamW([np.zeros(2)], lr=0.1, convention="optax").param_groups[0]
    assert group["weight_decay"] == 1e-4 and group["eps"] == 1e-8


def test_optax_has_no_default_learning_rate():
    with pytest.raises(TypeError, match=r"optax.adam .*no default for lr; pass lr="):
        optim.Adam([np.zeros(2)], convention="optax")


def test_a_library_without_the_algorithm_is_refused():
    with pytest.raises(ValueError, match=r"keras has no RAdam, .*'torch', 'optax'"):
        optim.RAdam([np.zeros(2)], convention="keras")


@pytest.mark.parametrize("value", ["jax", "Torch", None, 1])
def test_unknown_convention(value):
    with pytest.raises(ValueError, match=r"Invalid convention value: .*'torch', 'optax', 'keras'"):
        optim.Adam([np.zeros(2)], convention=value)


@pytest.mark.parametrize("name, kwargs, message", [
    ("Adam", {"eps_placement": "under"}, r"eps_placement must be one of 'outside', 'inside'"),
    ("Adamax", {"eps_placement": "hat"}, r"eps_placement must be one of 'inside', 'outside'"),
    ("Adagrad", {"eps_placement": "hat"}, r"eps_placement must be one of 'outside', 'inside'\)"),
    ("SGD", {"lr_in_momentum": 1}, r"lr_in_momentum must be True or False"),
    ("RMSprop", {"decoupled_weight_decay": "yes"}, r"decoupled_weight_decay must be True"),
    ("Adam", {"amsgrad_max_of": "m"}, r"amsgrad_max_of must be one of 'v', 'v_hat'"),
    ("Adam", {"amsgrad": True, "amsgrad_max_of": "v_hat", "eps_placement": "hat"},
     r"cannot be combined"),
    ("NAdam", {"momentum_schedule": "keras"}, r"momentum_schedule must be one of 'dozat'"),
    ("RAdam", {"rectify_threshold": 3.0}, r"rectify_threshold must be >= 4"),
    ("RAdam", {"rectify_threshold": float("nan")}, r"rectify_threshold must be a finite"),
    ("RAdam", {"rectify_fallback": "sgd"}, r"rectify_fallback must be one of 'momentum'"),
    ("Adam", {"scalar_dtype": "float32"}, r"scalar_dtype must be one of 'float64', 'param'"),
    ("NAdam", {"scalar_dtype": None}, r"scalar_dtype must be one of 'float64', 'param'"),
])
def test_invalid_switch_values_are_refused(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.OPTIMIZERS[name]([np.zeros(2)], lr=0.1, **kwargs)


def test_a_bad_switch_set_between_steps_changes_nothing():
    w = np.ones(3)
    opt = optim.Adam([w], lr=0.1)
    opt.step([np.ones(3)])
    before, state = w.copy(), opt.state_dict()
    opt.param_groups[0]["eps_placement"] = "nowhere"
    with pytest.raises(ValueError, match="eps_placement"):
        opt.step([np.ones(3)])
    np.testing.assert_array_equal(w, before)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], state["state"][0]["exp_avg"])


def test_switches_travel_in_the_state_dict():
    params = [np.ones(4)]
    opt = optim.RMSprop(params, lr=0.01, momentum=0.9, convention="keras")
    opt.step([np.full(4, 0.5)])
    saved = opt.state_dict()
    fresh = optim.RMSprop([np.ones(4)], lr=0.01, momentum=0.9)  # torch's switches
    fresh.load_state_dict(saved)
    group = fresh.param_groups[0]
    assert group["eps_placement"] == "inside" and group["lr_in_momentum"] is True
    assert group["eps"] == 1e-7 and group["alpha"] == 0.9


def _rho(beta2: float, t: int) -> float:
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2**t / (1 - beta2**t)


@pytest.mark.parametrize("threshold", [4.0, 5.0, 6.5])
def test_radam_threshold_and_no_step_fallback(threshold):
    """With rectify_fallback="none" θ stands still exactly while ρ_t <= threshold, ρ_t from the
    paper's formula; the first step past it is the rectified one."""
    beta2 = 0.999
    first = next(t for t in range(1, 50) if _rho(beta2, t) > threshold)
    w = np.ones(3)
    opt = optim.RAdam([w], lr=0.1, rectify_threshold=threshold, rectify_fallback="none")
    for t in range(1, first + 1):
        before = w.copy()
        opt.step([np.array([1.0, -2.0, 0.5])])
        if t < first:
            np.testing.assert_array_equal(w, before)
        else:
            assert np.all(w != before)
    assert first == {4.0: 5, 5.0: 6, 6.5: 7}[threshold]  # ρ_5 ≈ 4.996, ρ_6 ≈ 5.994, ρ_7 ≈ 6.99


def test_nadam_constant_schedule_is_optax_nesterov_form():
    """μ_t = β₁ throughout: the step is b1·m/(1 − β₁^{t+1}) + (1 − β₁)·g/(1 − β₁ᵗ) over
    √v̂ + ε, written out here in float64 for three steps."""
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    grads = [np.array([0.3, -1.0]), np.array([0.5, 2.0]), np.array([-0.2, 0.1])]
    w = np.array([1.0, 2.0])
    opt = optim.NAdam([w], lr=lr, momentum_schedule="constant")
    expected, m, v = w.copy(), np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, 1):
        opt.step([g])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        expected = expected - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(w, expected, rtol=1e-14)


def test_docs_conventions_is_the_codes_own_table():
    """docs/conventions.md is generated (tools/make_conventions_doc.py); it cannot drift."""
    committed = (Path(__file__).parent.parent / "docs" / "conventions.md").read_text("utf-8")
    assert committed == conventions.markdown(), \
        "docs/conventions.md is stale: run python tools/make_conventions_doc.py"
    for name in optim.OPTIMIZERS:
        assert f"\n## {name}\n" in committed
    for switch in conventions.SWITCHES:
        assert f"| `{switch}` |" in committed
