"""Sweep configurations: a TOML file read into a checked ``SweepConfig``.

```toml
name = "my-sweep"                      # names the sweep in the results store
problems = ["logreg-digits", "rosenbrock"]
trials = 20                            # tuning trials per problem and optimizer
seeds = 5                              # reruns of the best setting
seed = 0                               # tuning seed; reruns use seed + 1 ... seed + seeds
import = ["my_problems.py"]            # optional: files or modules that register problems

[optimizers.Adam]                      # a label; the optimizer is the label's name ...
lr = { min = 1e-4, max = 1e-1, scaling = "log" }
beta1 = [0.8, 0.9, 0.95]               # a list of points; beta1/beta2 set betas

[optimizers."SGD+momentum"]
optimizer = "SGD"                      # ... or the one named here
lr = { min = 1e-3, max = 1.0, scaling = "log" }
momentum = 0.9                         # a fixed value
```

Every mistake is a ``ConfigError`` (a ValueError) whose one line names the file, the place
and what was wrong: TOML syntax (with line and column), unknown keys (with the close match),
wrong types, unknown problems, optimizers or hyperparameters, ranges that are empty, and values
an optimizer refuses (each range's ends are tried).
"""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import optim
from ..problems.base import unknown_name
from .runner import import_problems, resolve_import
from .space import Points, Range, SearchSpace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOP_KEYS = ("name", "problems", "optimizers", "trials", "seeds", "seed", "import")
RANGE_KEYS = ("min", "max", "scaling")
SCALINGS = ("log", "linear")
# beta1 and beta2 search the two halves of ``betas`` separately
SPLIT = {"beta1": ("betas", 0), "beta2": ("betas", 1)}


class ConfigError(ValueError):
    """A mistake in a sweep configuration; its message is one line."""


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer of ``descentlab.optim`` under a label, with its search space."""

    label: str
    name: str
    space: SearchSpace

    @property
    def cls(self):
        return optim.OPTIMIZERS[self.name]

    def kwargs(self, setting: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments for one setting of the space (beta1/beta2 joined into
        betas, the other half from ``betas`` in the setting or the optimizer's default)."""
        out = {k: v for k, v in setting.items() if k not in SPLIT}
        for key, (target, index) in SPLIT.items():
            if key in setting:
                pair = list(out.get(target, optim.defaults_of(self.cls)[target]))
                pair[index] = setting[key]
                out[target] = tuple(pair)
        if "betas" in out:
            out["betas"] = tuple(out["betas"])
        return out

    def as_dict(self) -> dict[str, Any]:
        def dimension(value):
            if isinstance(value, Range):
                return {"min": value.low, "max": value.high,
                        "scaling": "log" if value.log else "linear"}
            if isinstance(value, Points):
                return list(value.values)
            return list(value) if isinstance(value, tuple) else value

        return {"optimizer": self.name,
                **{k: dimension(v) for k, v in self.space.dimensions.items()}}


@dataclass(frozen=True)
class SweepConfig:
    name: str
    problems: tuple[str, ...]
    optimizers: tuple[OptimizerSpec, ...]
    trials: int = 20
    seeds: int = 5
    seed: int = 0
    imports: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The configuration as the store records it: a rerun must match it to resume."""
        return {"name": self.name, "problems": list(self.problems),
                "optimizers": {o.label: o.as_dict() for o in self.optimizers},
                "trials": self.trials, "seeds": self.seeds, "seed": self.seed,
                "import": list(self.imports)}


def load(path: str | Path) -> SweepConfig:
    """Read and check the sweep configuration in the TOML file ``path``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return parse(data, str(path), base=path.parent)


def parse(data: dict[str, Any], source: str = "config", base: Path | None = None
          ) -> SweepConfig:
    """Check a configuration already read from TOML (``source`` names it in errors; relative
    ``import`` paths are taken from ``base``)."""

    def fail(where: str, what: str):
        raise ConfigError(f"{source}: {where}: {what}")

    _known_keys(data, TOP_KEYS, "top level", fail)
    for key in ("name", "problems", "optimizers"):
        if key not in data:
            fail("top level", f"missing key {key!r}")
    name = data["name"]
    if not (isinstance(name, str) and name.strip()):
        fail("name", f"must be a non-empty string, got {_show(name)}")
    counts = {}
    for key, default, least in (("trials", 20, 1), ("seeds", 5, 1), ("seed", 0, 0)):
        value = data.get(key, default)
        if not _is_int(value) or value < least:
            fail(key, f"must be an integer >= {least}, got {_show(value)}")
        counts[key] = value
    imports = data.get("import", [])
    if not (isinstance(imports, list) and all(isinstance(i, str) and i for i in imports)):
        fail("import", f"must be a list of module names or .py files, got {_show(imports)}")
    imports = tuple(resolve_import(i, base) for i in imports)
    _import_all(imports, lambda what: fail("import", what))

    problems = data["problems"]
    if not (isinstance(problems, list) and problems and
            all(isinstance(p, str) for p in problems)):
        fail("problems", f"must be a non-empty list of problem names, got {_show(problems)}")
    from .. import problems as registry

    for problem in problems:
        if problem not in registry.names():
            fail("problems", unknown_name("problem", problem, registry.names()))
    if len(set(problems)) != len(problems):
        fail("problems", "a problem is listed twice")

    table = data["optimizers"]
    if not (isinstance(table, dict) and table):
        fail("optimizers", "must hold at least one [optimizers.LABEL] table")
    optimizers = tuple(_optimizer(label, body, fail) for label, body in table.items())
    return SweepConfig(name.strip(), tuple(problems), optimizers, counts["trials"],
                       counts["seeds"], counts["seed"], imports)


def _optimizer(label: str, body: Any, fail) -> OptimizerSpec:
    where = f"[optimizers.{label}]"
    if not isinstance(body, dict):
        fail(where, f"must be a table of hyperparameters, got {_show(body)}")
    name = body.get("optimizer", label)
    if not isinstance(name, str) or name not in optim.OPTIMIZERS:
        fail(where, unknown_name("optimizer", name, list(optim.OPTIMIZERS))
             + ("" if "optimizer" in body else " (or name it with optimizer = \"...\")"))
    defaults = optim.defaults_of(optim.OPTIMIZERS[name])
    allowed = list(defaults) + [k for k, (target, _) in SPLIT.items() if target in defaults]
    _known_keys(body, ["optimizer", *allowed], where, fail)
    if "betas" in body and any(k in body for k in SPLIT):
        fail(where, "give betas or beta1/beta2, not both")
    dimensions = {}
    for key, value in body.items():
        if key == "optimizer":
            continue
        default = defaults[SPLIT[key][0]][SPLIT[key][1]] if key in SPLIT else defaults[key]
        dimensions[key] = _dimension(value, default, f"{where} {key}", fail)
    if "lr" not in dimensions:
        dimensions["lr"] = _default_lr(name, dimensions.get("convention", "torch"),
                                       defaults["lr"], where, fail)
    spec = OptimizerSpec(label, name, SearchSpace(dimensions))
    probe = [np.zeros(2)]  # every corner of the space must be accepted by the optimizer
    for setting in spec.space.corners():
        try:
            spec.cls(probe, **spec.kwargs(setting))
        except (ValueError, TypeError) as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in setting.items())
            fail(where, f"{name} refuses {shown}: {exc}")
    return spec


def _default_lr(name: str, convention: str, torch_lr: float, where: str, fail) -> float:
    """The lr a run uses when the configuration gives none: the convention's default."""
    try:
        preset = optim.conventions.preset(name, convention)
    except ValueError as exc:
        fail(where, str(exc))
    if preset is None or "lr" not in preset.settings:
        return torch_lr
    if preset.settings["lr"] is optim.conventions.REQUIRED:
        fail(where, f"{preset.reference} has no default learning rate: give lr")
    return preset.settings["lr"]


def _dimension(value: Any, default: Any, where: str, fail):
    """A fixed value, ``Points`` or ``Range`` whose values have ``default``'s type."""
    if isinstance(default, tuple):  # betas: a fixed pair only
        if not (isinstance(value, list) and len(value) == len(default)
                and all(_is_number(v) for v in value)):
            fail(where, f"must be a list of {len(default)} numbers (search beta1 and beta2 "
                        f"separately), got {_show(value)}")
        return tuple(float(v) for v in value)
    if isinstance(default, str):  # a choice (convention, eps_placement, ...): fixed only
        if not isinstance(value, str):
            fail(where, f"must be a string, got {_show(value)} (to compare several choices, "
                        "give each its own [optimizers.LABEL] table)")
        return value
    kind = bool if isinstance(default, bool) else float
    if isinstance(value, dict):
        if kind is bool:
            fail(where, f"is a switch: give true, false or [false, true], got {_show(value)}")
        _known_keys(value, RANGE_KEYS, where, fail)
        for key in ("min", "max"):
            if key not in value:
                fail(where, f"a range needs min and max, got {_show(value)}")
            if not (_is_number(value[key]) and math.isfinite(value[key])):
                fail(where, f"{key} must be a finite number, got {_show(value[key])}")
        scaling = value.get("scaling", "linear")
        if scaling not in SCALINGS:
            fail(where, f"scaling must be one of {', '.join(map(repr, SCALINGS))}, got "
                        f"{_show(scaling)}")
        low, high = float(value["min"]), float(value["max"])
        if not low < high:
            fail(where, f"min must be below max, got min={low:g}, max={high:g}")
        if scaling == "log" and low <= 0:
            fail(where, f"a log range needs min > 0, got {low:g}")
        return Range(low, high, scaling == "log")
    if isinstance(value, list):
        if not value:
            fail(where, "an empty list of points")
        return Points(tuple(_scalar(v, kind, where, fail) for v in value))
    return _scalar(value, kind, where, fail)


def _scalar(value: Any, kind: type, where: str, fail):
    if kind is bool:
        if not isinstance(value, bool):
            fail(where, f"must be true or false, got {_show(value)}")
        return value
    if not _is_number(value):
        fail(where, f"must be a number, a list of numbers or a range {{min, max, scaling}}, "
                    f"got {_show(value)}")
    return float(value)


def _known_keys(table: dict[str, Any], allowed, where: str, fail) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(where, f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _import_all(imports: tuple[str, ...], fail) -> None:
    try:
        import_problems(imports)
    except ImportError as exc:
        fail(str(exc))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A value as the user wrote it in TOML, with its type."""
    kinds = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
             dict: "table"}
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kinds.get(type(value), type(value).__name__)})"
