"""Record optax's and Keras 3's trajectories for every case of tests/convention_cases.py.

    python -m venv /tmp/conventions && . /tmp/conventions/bin/activate
    pip install torch==2.13.0               # the CPU build, for Keras's torch backend
    pip install "jax[cpu]" optax keras numpy
    python tools/make_conventions.py        # writes tests/data/golden_{optax,keras}.npz

Each file holds, per case and dtype, the parameters after every step (``<case>/<dtype>/<i>``,
shape (STEPS + 1, *shape), the initial values first), each library constructor's own defaults
as JSON (``defaults/<factory>``, from its signature or ``get_config``), the versions, and
βᵗ in float32 as the library computes it for its bias corrections (``powers/<β>``, t = 1..300).
optax runs under ``jax.jit``, as it is used.

Every (library, dtype) runs in a fresh process: JAX's 64-bit mode and Keras's floatx are
process-wide, and a float32 run must see what a float32 user sees (optax under x64 would
compute its scalars in float64). Keras runs on its torch backend (there is no Keras without a
backend, and torch is the one this project already installs).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from convention_cases import (  # noqa: E402
    CASES,
    LIBRARIES,
    SCHEDULE_EVERY,
    STEPS,
    ConventionCase,
    problem_data,
)

DTYPES = ("float64", "float32")


def out_path(library: str) -> Path:
    return ROOT / "tests" / "data" / f"golden_{library}.npz"


# -- optax ---------------------------------------------------------------------------------------


def optax_run(case: ConventionCase, dtype: str) -> list[np.ndarray]:
    """The trajectory under ``jax.jit``, as optax is used. Run eagerly, JAX computes a float
    raised to an int32 array (βᵗ in the bias corrections) by repeated squaring in float32, not
    with XLA's pow: 0.999ᵗ then differs from the jitted value in the last bit from t = 3, which
    moves optax's own float32 RAdam by 2e-5 (its ρ_t cancels: 1999 − 1998.x)."""
    import jax
    import jax.numpy as jnp
    import optax

    kwargs = dict(case.theirs)
    if case.schedule:
        lr = kwargs["learning_rate"]
        kwargs["learning_rate"] = lambda count: lr * 0.5 ** (count // SCHEDULE_EVERY)
    transform = getattr(optax, case.factory)(**kwargs)
    params0, grads = problem_data(np.dtype(dtype))
    params = [jnp.asarray(p) for p in params0]
    state = transform.init(params)
    trail = [[np.asarray(p)] for p in params]

    @jax.jit
    def step(grads, state, params):
        updates, state = transform.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for row in grads:
        params, state = step([jnp.asarray(g) for g in row], state, params)
        for i, p in enumerate(params):
            assert p.dtype == np.dtype(dtype), (case.name, p.dtype)
            trail[i].append(np.asarray(p))
    return [np.stack(t) for t in trail]


def optax_defaults(factory: str) -> dict:
    import optax

    return _signature_defaults(getattr(optax, factory))


def optax_powers(beta: float) -> np.ndarray:
    """βᵗ for t = 1..POWER_STEPS in float32 as optax's bias corrections compute it under jit:
    ``beta ** count``, a Python float raised to an int32 count."""
    import jax
    import jax.numpy as jnp

    power = jax.jit(lambda count: beta**count)
    return np.array([power(jnp.int32(t)) for t in range(1, POWER_STEPS + 1)], dtype=np.float32)


# -- Keras -------------------------------------------------------------------------------------


def keras_run(case: ConventionCase, dtype: str) -> list[np.ndarray]:
    import keras

    keras.config.set_floatx(dtype)  # the optimizer's lr and step variables take this dtype
    kwargs = dict(case.theirs)
    if case.schedule:
        kwargs["learning_rate"] = _halving(keras, kwargs.get("learning_rate", 1e-3))
    optimizer = getattr(keras.optimizers, case.factory)(**kwargs)
    params0, grads = problem_data(np.dtype(dtype))
    variables = [keras.Variable(p, dtype=dtype) for p in params0]
    trail = [[p.copy()] for p in params0]
    for row in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype=dtype) for g in row], variables)
        for i, v in enumerate(variables):
            value = keras.ops.convert_to_numpy(v.value)
            assert value.dtype == np.dtype(dtype), (case.name, value.dtype)
            trail[i].append(value)
    return [np.stack(t) for t in trail]


def keras_powers(beta: float) -> np.ndarray:
    """βᵗ for t = 1..POWER_STEPS in float32 as Keras's Adam computes it: ``ops.power`` of β
    cast to float32 and the step cast to float32."""
    import keras

    base = keras.ops.cast(beta, "float32")
    return np.array([keras.ops.convert_to_numpy(keras.ops.power(base, keras.ops.cast(t, "float32")))
                     for t in range(1, POWER_STEPS + 1)], dtype=np.float32)


def _halving(keras, lr: float):
    class Halving(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            halvings = keras.ops.floor_divide(step, SCHEDULE_EVERY)
            return lr * keras.ops.power(0.5, keras.ops.cast(halvings, keras.config.floatx()))

    return Halving()


def keras_defaults(factory: str) -> dict:
    import keras

    return _signature_defaults(getattr(keras.optimizers, factory))


def _signature_defaults(function) -> dict:
    """Each argument's default (absent when it has none); non-JSON values as their repr."""
    out = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.default is inspect.Parameter.empty:
            continue
        value = parameter.default
        out[name] = value if isinstance(value, (bool, int, float, str, type(None))) else repr(value)
    return out


RUN = {"optax": optax_run, "keras": keras_run}
POWERS = {"optax": optax_powers, "keras": keras_powers}
# the β whose float32 powers are recorded (the usual β₁ and β₂, NAdam's 0.96) and for how long
POWER_BETAS = (0.9, 0.96, 0.99, 0.999)
POWER_STEPS = 300
DEFAULTS = {"optax": optax_defaults, "keras": keras_defaults}


def versions(library: str) -> dict:
    if library == "optax":
        import jax
        import optax

        return {"optax": optax.__version__, "jax": jax.__version__}
    import keras
    import torch

    return {"keras": keras.__version__, "backend": keras.backend.backend(),
            "torch": torch.__version__}


# -- driver --------------------------------------------------------------------------------------


def worker(library: str, dtype: str, path: str) -> None:
    """Record every case of ``library`` in ``dtype`` into ``path`` (runs in its own process)."""
    if library == "optax" and dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    arrays: dict[str, np.ndarray] = {}
    for case in (c for c in CASES if c.library == library):
        for i, trail in enumerate(RUN[library](case, dtype)):
            arrays[f"{case.name}/{dtype}/{i}"] = trail
    if dtype == "float32":
        for beta in POWER_BETAS:
            arrays[f"powers/{beta}"] = POWERS[library](beta)
    if dtype == "float64":
        for factory in sorted({c.factory for c in CASES if c.library == library}):
            arrays[f"defaults/{factory}"] = np.array(json.dumps(DEFAULTS[library](factory)))
        arrays["versions"] = np.array(json.dumps(versions(library)))
    np.savez(path, **arrays)


def main() -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch", "JAX_PLATFORMS": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        for library in LIBRARIES:
            arrays: dict[str, np.ndarray] = {}
            for dtype in DTYPES:
                part = Path(tmp) / f"{library}-{dtype}.npz"
                subprocess.run([sys.executable, __file__, "--worker", library, dtype, str(part)],
                               check=True, env=env)
                with np.load(part, allow_pickle=False) as data:
                    arrays.update({key: data[key] for key in data.files})
            target = out_path(library)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".tmp.npz")
            np.savez_compressed(partial, **arrays)
            partial.replace(target)
            cases = sum(c.library == library for c in CASES)
            print(f"wrote {target.relative_to(ROOT)}: {cases} cases x {len(DTYPES)} dtypes, "
                  f"{STEPS} steps ({target.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:5])
    else:
        main()
