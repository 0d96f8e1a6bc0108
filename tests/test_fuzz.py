"""Fuzzing with hypothesis: random optimizers, hyperparameters, shapes, dtypes and gradient
sequences full of extreme values (NaN, ±inf, the largest floats, the smallest normal and
subnormal ones, signed zeros).

Two things must hold. The fused executor equals the array-wise reference, step by step, on
parameters and on every state array, with NaN and infinity in the same places. And nothing
fails except with the documented errors: FloatingPointError for a non-finite gradient under
``nonfinite="raise"``, ValueError or TypeError for a bad hyperparameter.
"""

from __future__ import annotations

import numpy as np
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import descentlab.optim as optim
from descentlab.optim.executors.finite import nonfinite_positions

FUZZ = settings(max_examples=examples(150), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}


def _extremes(dtype):
    info = np.finfo(dtype)
    return [np.nan, np.inf, -np.inf, float(info.max), -float(info.max), float(info.tiny),
            float(info.smallest_subnormal), -float(info.smallest_subnormal), 0.0, -0.0, 1e30,
            -1e-30]


def _elements(dtype, wild: bool):
    ordinary = st.floats(-10, 10, width=dtype.itemsize * 8)
    if not wild:
        return ordinary
    return st.one_of(ordinary, st.sampled_from(_extremes(dtype)),
                     st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True))


def _hyperparameters(name):
    lr = st.floats(1e-6, 10.0)
    beta = st.floats(0.0, 0.999)
    common = {"lr": lr, "weight_decay": st.sampled_from([0.0, 1e-3, 0.5]),
              "maximize": st.booleans()}
    extra = {
        "SGD": {"momentum": st.sampled_from([0.0, 0.5, 0.9]), "dampening": st.just(0.0),
                "nesterov": st.booleans()},
        "Adagrad": {"lr_decay": st.sampled_from([0.0, 0.1]),
                    "initial_accumulator_value": st.sampled_from([0.0, 0.1]),
                    "eps": st.floats(1e-12, 1.0)},
        "RMSprop": {"alpha": beta, "eps": st.floats(1e-12, 1.0), "centered": st.booleans(),
                    "momentum": st.sampled_from([0.0, 0.9])},
        "Adadelta": {"rho": beta, "eps": st.floats(1e-12, 1.0)},
        "Lion": {"betas": st.tuples(beta, beta)},
    }.get(name, {"betas": st.tuples(beta, beta), "eps": st.floats(1e-12, 1.0)})
    if name in ("Adam", "AdamW"):
        extra = {**extra, "amsgrad": st.booleans()}
    if name == "NAdam":
        extra = {**extra, "momentum_decay": st.sampled_from([0.0, 4e-3])}
    return st.fixed_dictionaries({**common, **extra})


@st.composite
def runs(draw):
    name = draw(st.sampled_from(sorted(optim.OPTIMIZERS)))
    kwargs = draw(_hyperparameters(name))
    if name == "SGD" and kwargs["nesterov"] and kwargs["momentum"] == 0:
        kwargs["momentum"] = 0.9
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shapes = draw(st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
                           min_size=1, max_size=4))
    params = [draw(hnp.arrays(dtype, s, elements=_elements(dtype, False))) for s in shapes]
    wild = _elements(dtype, True)
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        grads = []
        for shape in shapes:
            g = draw(st.none() | hnp.arrays(dtype, shape, elements=wild))
            if g is not None and g.ndim == 2 and draw(st.booleans()):
                g = np.asfortranarray(g)  # not C-contiguous: the fused executor's slow path
            grads.append(g)
        steps.append(grads)
    nonfinite = draw(st.sampled_from(["raise", "skip"]))
    return name, kwargs, dtype, params, steps, nonfinite


def _assert_close(ours, ref, dtype, what):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, what
    assert np.array_equal(np.isnan(ours), np.isnan(ref)), f"{what}: NaN in other places"
    infinite = np.isinf(ref)
    assert np.array_equal(ours[infinite], ref[infinite]) and not np.isinf(ours[~infinite]).any(), \
        f"{what}: infinities differ"
    finite = np.isfinite(ref)
    difference = np.abs(ours[finite].astype(np.float64) - ref[finite])
    allowed = TOLERANCE[dtype] * np.abs(ref[finite].astype(np.float64)) + np.finfo(dtype).tiny
    assert (difference <= allowed).all(), f"{what}: {difference.max()} apart"


@FUZZ
@given(runs())
def test_fused_equals_the_reference_and_only_documented_errors_escape(run):
    name, kwargs, dtype, params, steps, nonfinite = run
    both = {}
    for executor in ("fused", "arraywise"):
        copies = [p.copy() for p in params]
        both[executor] = (optim.OPTIMIZERS[name](copies, executor=executor,
                                                 nonfinite=nonfinite, **kwargs), copies)
    with np.errstate(all="ignore"):  # overflow in the reference is expected with these values
        for number, grads in enumerate(steps):
            bad = any(g is not None and not np.isfinite(g).all() for g in grads)
            for executor, (opt, copies) in both.items():
                before = [p.tobytes() for p in copies]
                if bad and nonfinite == "raise":
                    try:
                        opt.step(grads)
                    except FloatingPointError:
                        assert [p.tobytes() for p in copies] == before
                    else:
                        raise AssertionError(f"{executor}: a non-finite gradient passed")
                else:
                    opt.step(grads)
                    if bad:
                        assert [p.tobytes() for p in copies] == before
            (fused, mine), (reference, theirs) = both["fused"], both["arraywise"]
            assert fused.skipped_steps == reference.skipped_steps
            for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                _assert_close(a, b, dtype, f"step {number}, parameter {i}")
            assert fused.state.keys() == reference.state.keys()
            for key, state in reference.state.items():
                for entry, value in state.items():
                    if isinstance(value, np.ndarray):
                        _assert_close(fused.state[key][entry], value, dtype,
                                      f"step {number}, {entry} of {key}")
                    else:
                        assert fused.state[key][entry] == value


_GARBAGE = st.one_of(st.none(), st.text(max_size=3), st.booleans(),
                     st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(-10, 10), st.tuples(st.floats(), st.floats(), st.floats()),
                     st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)),
                     st.lists(st.floats(), max_size=2))


@FUZZ
@given(st.sampled_from(sorted(optim.OPTIMIZERS)), st.data())
def test_garbage_hyperparameters_raise_only_documented_errors(name, data):
    cls = optim.OPTIMIZERS[name]
    arguments = [k for k in optim.defaults_of(cls)]
    chosen = data.draw(st.lists(st.sampled_from(arguments), min_size=1, max_size=3,
                                unique=True))
    kwargs = {k: data.draw(_GARBAGE) for k in chosen}
    w = np.linspace(-1, 1, 5)
    try:
        opt = cls([w], **kwargs)
    except (ValueError, TypeError):
        np.testing.assert_array_equal(w, np.linspace(-1, 1, 5))
        return
    # accepted: it must be usable (the values were valid after all)
    with np.errstate(all="ignore"):
        opt.step([np.ones(5)])


@FUZZ
@given(st.lists(st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64]),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
               elements=st.floats(allow_nan=True, allow_infinity=True, width=32)),
    st.none()), min_size=1, max_size=6), st.integers(0, 2))
def test_the_nonfinite_scan_agrees_with_numpy(arrays, view):
    if view == 1:  # strided views are scanned by NumPy
        arrays = [a[..., ::2] if a is not None and a.ndim else a for a in arrays]
    expected = [i for i, a in enumerate(arrays) if a is not None and not np.isfinite(a).all()]
    assert nonfinite_positions(arrays) == expected
