"""Presets that make an optimizer compute what optax or Keras 3 computes under the same name.

The same "Adam" or "RMSprop" gives different trajectories in torch.optim, optax and Keras: they
place ε differently, couple weight decay differently, put lr inside or outside a momentum
buffer and schedule NAdam's momentum differently (optax issue 571, keras issue 17391,
tensorflow issue 35102). Every such choice is a hyperparameter of descentlab's optimizers (a
*switch*, documented in each rule's docstring), and ``convention=`` sets all of them, together
with the library's defaults, in one word::

    Adam(params, lr=1e-3, convention="keras")   # keras.optimizers.Adam(learning_rate=1e-3)

torch.optim is the default convention: its values are the constructors' own defaults. A preset
only fills in what the caller did not pass: ``Adam(params, convention="keras", eps=1e-8)``
keeps ε = 1e-8 and takes everything else from Keras.

This table is the one place where the libraries' choices are written down; the tests compare
it with the defaults recorded from optax and Keras themselves (``tools/make_conventions.py``),
and ``docs/conventions.md`` is generated from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONVENTIONS = ("torch", "optax", "keras")

# The switches: hyperparameters beyond torch.optim's (torch's own decoupled_weight_decay
# extended to every optimizer), each a choice the libraries make differently. The math of
# each is in the docstring of the rule that reads it (descentlab.optim.rules).
SWITCHES: dict[str, str] = {
    "eps_placement": "where ε goes: 'outside' the root (√v̂ + ε), 'inside' it (√(v̂ + ε)), "
                     "or 'hat' (√v + ε, the bias correction moved into the step size); "
                     "Adamax: 'inside' or 'outside' the max",
    "decoupled_weight_decay": "False: L2, λθ added to the gradient; True: θ ← θ (1 − lr λ) "
                              "before the step",
    "lr_in_momentum": "the momentum buffer accumulates lr-scaled steps (b ← μ b + lr d, "
                      "θ ← θ − b) instead of raw ones (θ ← θ − lr b)",
    "amsgrad_max_of": "AMSGrad keeps the max of the raw 'v' (corrected after) or of the "
                      "bias-corrected 'v_hat'",
    "momentum_schedule": "NAdam's μ_t: 'dozat' β₁ (1 − ½ · 0.96^{t ψ}), ψ = momentum_decay, "
                         "or 'constant' β₁",
    "rectify_threshold": "RAdam rectifies when ρ_t exceeds it (torch 5, the paper 4)",
    "rectify_fallback": "RAdam below the threshold: a bias-corrected 'momentum' step, or "
                        "'none'",
    "scalar_dtype": "the type the step's scalars (1 − βᵗ, NAdam's μ_t, RAdam's ρ_t) are "
                    "computed in: 'float64', or the parameters' dtype ('param'), from β rounded "
                    "to it; only float32 parameters see a difference",
}


class _Required:
    """The library has no default for this hyperparameter: the caller must give it."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Preset:
    """How one library defines one algorithm, in descentlab's hyperparameter names.

    Attributes:
        library: "optax" or "keras".
        reference: the library's own name for it, e.g. ``optax.adamw``.
        settings: descentlab hyperparameter -> value (``REQUIRED`` where the library has no
            default).
        names: descentlab hyperparameter -> the library's argument name, where they differ.
        notes: what else a user porting between the two should know.
    """

    library: str
    reference: str
    settings: Mapping[str, Any]
    names: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


_OPTAX_NAMES = {"lr": "learning_rate", "betas": "(b1, b2)"}
_KERAS_NAMES = {"lr": "learning_rate", "betas": "(beta_1, beta_2)", "eps": "epsilon"}
# Keras applies weight decay the same way in every optimizer, decoupled and scaled by lr
# (BaseOptimizer._apply_weight_decay: θ ← θ − θ·λ·lr, before the update).
_KERAS_DECAY = {"weight_decay": 0.0, "decoupled_weight_decay": True}
_OPTAX_LR = {"lr": REQUIRED}
# the Adam family in optax and Keras: their β, and 1 − βᵗ computed from β rounded to the
# parameters' dtype, in that dtype
_ADAM_FAMILY = {"betas": (0.9, 0.999), "scalar_dtype": "param"}

PRESETS: dict[str, dict[str, Preset | None]] = {
    "SGD": {
        "optax": Preset("optax", "optax.sgd", {
            **_OPTAX_LR, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
            "weight_decay": 0.0, "decoupled_weight_decay": False, "lr_in_momentum": False,
        }, _OPTAX_NAMES, ("momentum=None means no momentum; there is no dampening and no "
                          "weight decay (chain optax.add_decayed_weights before sgd for L2)",)),
        "keras": Preset("keras", "keras.optimizers.SGD", {
            "lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
            **_KERAS_DECAY, "lr_in_momentum": True,
        }, _KERAS_NAMES, ("the buffer holds lr-scaled steps, v ← μ v − lr g",)),
    },
    "Adagrad": {
        "optax": Preset("optax", "optax.adagrad", {
            **_OPTAX_LR, "lr_decay": 0.0, "initial_accumulator_value": 0.1, "eps": 1e-7,
            "eps_placement": "inside", "weight_decay": 0.0, "decoupled_weight_decay": False,
        }, _OPTAX_NAMES, ("computes rsqrt(s + ε)·g, where s > 0, else 0",)),
        "keras": Preset("keras", "keras.optimizers.Adagrad", {
            "lr": 1e-3, "lr_decay": 0.0, "initial_accumulator_value": 0.1, "eps": 1e-7,
            "eps_placement": "inside", **_KERAS_DECAY,
        }, _KERAS_NAMES),
    },
    "RMSprop": {
        "optax": Preset("optax", "optax.rmsprop", {
            **_OPTAX_LR, "alpha": 0.9, "eps": 1e-8, "eps_placement": "inside", "momentum": 0.0,
            "centered": False, "lr_in_momentum": True, "weight_decay": 0.0,
            "decoupled_weight_decay": False,
        }, {**_OPTAX_NAMES, "alpha": "decay"}, (
            "eps_in_sqrt=False is eps_placement='outside'; initial_scale, nesterov and "
            "bias_correction (all off by default) have no descentlab switch",
            "its momentum is a trace of updates already scaled by lr",
        )),
        "keras": Preset("keras", "keras.optimizers.RMSprop", {
            "lr": 1e-3, "alpha": 0.9, "eps": 1e-7, "eps_placement": "inside", "momentum": 0.0,
            "centered": False, "lr_in_momentum": True, **_KERAS_DECAY,
        }, {**_KERAS_NAMES, "alpha": "rho"}),
    },
    "Adadelta": {
        "optax": Preset("optax", "optax.adadelta", {
            **_OPTAX_LR, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0,
            "decoupled_weight_decay": False,
        }, _OPTAX_NAMES, ("learning_rate=None (its default) skips the lr scaling and with it "
                          "the sign flip: the update then *ascends*; give lr",
                          "weight_decay is added to the gradient before the scaling (L2)")),
        "keras": Preset("keras", "keras.optimizers.Adadelta", {
            "lr": 1e-3, "rho": 0.95, "eps": 1e-7, **_KERAS_DECAY,
        }, _KERAS_NAMES),
    },
    "Adam": {
        "optax": Preset("optax", "optax.adam / optax.amsgrad", {
            **_OPTAX_LR, **_ADAM_FAMILY, "eps": 1e-8, "eps_placement": "outside",
            "amsgrad_max_of": "v_hat", "weight_decay": 0.0, "decoupled_weight_decay": True,
        }, _OPTAX_NAMES, (
            "amsgrad=True is optax.amsgrad, weight decay is optax.adamw's",
            "eps_root=x with eps=0 is eps_placement='inside' with eps=x; both non-zero at once "
            "has no descentlab equivalent",
        )),
        "keras": Preset("keras", "keras.optimizers.Adam", {
            "lr": 1e-3, **_ADAM_FAMILY, "eps": 1e-7, "eps_placement": "hat",
            "amsgrad_max_of": "v", **_KERAS_DECAY,
        }, _KERAS_NAMES),
    },
    "AdamW": {
        "optax": Preset("optax", "optax.adamw", {
            **_OPTAX_LR, **_ADAM_FAMILY, "eps": 1e-8, "eps_placement": "outside",
            "amsgrad_max_of": "v_hat", "weight_decay": 1e-4,
        }, _OPTAX_NAMES, ("adds λθ to the update before the lr scaling: the same as decaying θ "
                          "by lr·λ",)),
        "keras": Preset("keras", "keras.optimizers.AdamW", {
            "lr": 1e-3, **_ADAM_FAMILY, "eps": 1e-7, "eps_placement": "hat",
            "amsgrad_max_of": "v", "weight_decay": 0.004,
        }, _KERAS_NAMES),
    },
    "Adamax": {
        "optax": Preset("optax", "optax.adamax", {
            **_OPTAX_LR, **_ADAM_FAMILY, "eps": 1e-8, "eps_placement": "inside",
            "weight_decay": 0.0, "decoupled_weight_decay": False,
        }, _OPTAX_NAMES),
        "keras": Preset("keras", "keras.optimizers.Adamax", {
            "lr": 1e-3, **_ADAM_FAMILY, "eps": 1e-7, "eps_placement": "outside", **_KERAS_DECAY,
        }, _KERAS_NAMES),
    },
    "NAdam": {
        "optax": Preset("optax", "optax.nadam / optax.nadamw", {
            **_OPTAX_LR, **_ADAM_FAMILY, "eps": 1e-8, "eps_placement": "outside",
            "momentum_schedule": "constant", "weight_decay": 0.0,
            "decoupled_weight_decay": True,
        }, _OPTAX_NAMES, ("nadam is adam(nesterov=True); weight decay is nadamw's",)),
        "keras": Preset("keras", "keras.optimizers.Nadam", {
            "lr": 1e-3, **_ADAM_FAMILY, "eps": 1e-7, "eps_placement": "outside",
            "momentum_schedule": "dozat", "momentum_decay": 1.0, **_KERAS_DECAY,
        }, _KERAS_NAMES, ("μ_t = β₁ (1 − ½ · 0.96^t): Dozat's schedule with ψ = 1",)),
    },
    "RAdam": {
        "optax": Preset("optax", "optax.radam", {
            **_OPTAX_LR, **_ADAM_FAMILY, "eps": 1e-8, "eps_placement": "outside",
            "rectify_threshold": 5.0, "rectify_fallback": "momentum", "weight_decay": 0.0,
            "decoupled_weight_decay": False,
        }, {**_OPTAX_NAMES, "rectify_threshold": "threshold"}, (
            "rectifies when ρ_t >= threshold (torch: ρ_t > 5); they differ only if ρ_t is "
            "exactly the threshold",
        )),
        "keras": None,
    },
    "Lion": {
        "optax": Preset("optax", "optax.lion", {
            **_OPTAX_LR, "betas": (0.9, 0.99), "weight_decay": 1e-3,
        }, _OPTAX_NAMES),
        "keras": Preset("keras", "keras.optimizers.Lion", {
            "lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.0,
        }, _KERAS_NAMES),
    },
}


def preset(algorithm: str, convention: str) -> Preset | None:
    """The preset for ``algorithm`` (a descentlab class name) under ``convention``.

    None for "torch" (the constructor's defaults are torch's). Raises ValueError, naming the
    choices, for an unknown convention or a library that lacks the algorithm.
    """
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ValueError(f"Invalid convention value: {convention!r} (convention must be one "
                         f"of {', '.join(map(repr, CONVENTIONS))})")
    if convention == "torch":
        return None
    found = PRESETS[algorithm][convention]
    if found is None:
        have = ["torch", *(c for c, p in PRESETS[algorithm].items() if p is not None)]
        raise ValueError(f"{convention} has no {algorithm}, so there is no "
                         f"convention={convention!r} for it (it has: "
                         f"{', '.join(map(repr, have))})")
    return found


def apply(algorithm: str, convention: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters ``convention`` adds to the explicitly ``given`` ones.

    Raises TypeError when the library has no default for a hyperparameter not given (optax's
    learning rates).
    """
    found = preset(algorithm, convention)
    if found is None:
        return {}
    added = {name: value for name, value in found.settings.items() if name not in given}
    missing = [name for name, value in added.items() if value is REQUIRED]
    if missing:
        raise TypeError(f"{algorithm}(convention={convention!r}): {found.reference} has no "
                        f"default for {', '.join(missing)}; pass "
                        f"{' and '.join(f'{m}=...' for m in missing)}")
    return added


# -- docs/conventions.md is this function's output (tools/make_conventions_doc.py) ------------

_PREAMBLE = """\
# Conventions: reproducing torch.optim, optax and Keras 3

*Generated by `python tools/make_conventions_doc.py` from `descentlab.optim.conventions` and
the rules' docstrings; a test fails when this file and the code disagree.*

The same algorithm name computes different things in different libraries. descentlab makes
each difference a switch (a hyperparameter, kept in `param_groups` and in state dicts), and
`convention=` sets all of them, with the library's defaults, at once:

```python
from descentlab.optim import Adam
Adam(params, lr=1e-3, convention="keras")   # keras.optimizers.Adam(learning_rate=1e-3)
Adam(params, lr=1e-3, convention="optax")   # optax.adam(1e-3)
Adam(params, convention="keras", eps=1e-8)  # Keras's Adam, but with ε = 1e-8
```

`convention="torch"` (the default) keeps the constructors' own defaults, which are
torch.optim's. A preset fills in only what the call does not give. optax has no default
learning rates, so `convention="optax"` asks for `lr`.

How close the presets come (tests/test_conventions.py, against trajectories that
`tools/make_conventions.py` recorded from optax 0.2.8 on JAX 0.10.2 and Keras 3.15.1 on
torch 2.13.0; 30 steps, gradients from 1e-6 to 10 in scale):

- In float64, every case is within 1e-12 relative; the largest error is 1.7e-15.
- In float32, every case is within 1e-6; the largest error is 8.1e-7.
  - For the Adam family this needs `scalar_dtype="param"`, which both presets set. optax and
    Keras compute the bias corrections 1 − βᵗ (and RAdam's ρ_t) in float32, from β rounded
    to float32 (0.99900001), while the moments take 1 − β from the float64 value. torch
    computes these scalars in Python floats.
  - With torch's float64 scalars, the same float32 runs of Adam, AdamW and NAdam (lr = 0.05)
    miss the libraries by 1.6e-6 to 3.1e-6, and optax's RAdam by 4.2e-5: its ρ_t cancels
    (1999 − 1998.x at t = 1), so one unit in the last place of β₂ᵗ moves it visibly.
  - βᵗ is rounded once to float32, which is what XLA's pow and torch.pow return (checked bit
    for bit for β = 0.9, 0.96, 0.99, 0.999 and t ≤ 300).
  - optax is recorded under `jax.jit`, as it is used. Run eagerly, JAX raises a float to an
    int32 power by repeated squaring in float32, so eager optax differs from jitted optax in
    the last bit of βᵗ (its own RAdam by 2e-5).

## The switches

| switch | what it chooses | torch.optim | optimizers |
|---|---|---|---|
"""


def _show(value: Any) -> str:
    if value is REQUIRED:
        return "*required*"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def markdown() -> str:
    """docs/conventions.md: the switches, then per algorithm each library's settings and the
    update rule with its switches, taken from the rule's docstring."""
    import inspect

    from .algorithms import OPTIMIZERS, defaults_of

    defaults = {name: defaults_of(cls) for name, cls in OPTIMIZERS.items()}
    lines = [_PREAMBLE.rstrip("\n")]
    for switch, meaning in SWITCHES.items():
        having = [name for name in OPTIMIZERS if switch in defaults[name]]
        torch_values = sorted({_show(defaults[name][switch]) for name in having})
        lines.append(f"| `{switch}` | {meaning} | {' or '.join(torch_values)} | "
                     f"{', '.join(having)} |")
    for name, cls in OPTIMIZERS.items():
        presets = PRESETS[name]
        lines += ["", f"## {name}", ""]
        libraries = ["torch.optim." + name if name != "Lion" else "authors' code"]
        libraries += [p.reference if p else f"{library}: none" for library, p in presets.items()]
        lines.append("| | " + " | ".join(libraries) + " |")
        lines.append("|---" * (len(libraries) + 1) + "|")
        for key, value in defaults[name].items():
            if key == "convention":
                continue
            row = [_show(value)]
            for preset in presets.values():
                if preset is None:
                    row.append("")
                    continue
                shown = _show(preset.settings.get(key, value))
                renamed = preset.names.get(key)
                row.append(f"{shown} (`{renamed}`)" if renamed and key in preset.settings
                           else shown)
            lines.append(f"| `{key}` | " + " | ".join(row) + " |")
        notes = [f"- {p.reference}: {note}." for p in presets.values() if p for note in p.notes]
        if notes:
            lines += ["", *notes]
        doc = inspect.cleandoc(cls.rule.update.__doc__ or "")
        lines += ["", "```text", doc, "```"]
    return "\n".join(lines) + "\n"
