"""Run the benchmark and present it: one measurement pass, a rich table, a JSON record."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .configs import select
from .steps import descentlab_step, first_call, torch_best_flavour, torch_step, torch_steps
from .stream import triad_bandwidth


@dataclass
class BenchSettings:
    optimizers: list[str] = field(default_factory=list)  # empty: all
    size: int = 2**25
    dtype: str = "float32"
    repeats: int = 10
    warmup: int = 3
    many: tuple[int, int] = (1000, 4096)  # count x elements of the many-small-arrays case
    threads: int | None = None  # None: Numba's default (the number of cores)
    torch: bool = True  # compare with torch.optim when it is installed

    def check(self) -> None:
        if self.size < 1:
            raise ValueError(f"--size must be at least 1, got {self.size}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError("--repeats must be at least 1 and --warmup at least 0")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"--dtype must be float32 or float64, got {self.dtype!r}")
        if min(self.many) < 1:
            raise ValueError(f"--many needs two positive numbers, got {self.many}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {self.threads}")
        select(self.optimizers)  # unknown names


def run(settings: BenchSettings, progress: Any = None) -> dict[str, Any]:
    """Measure every selected configuration; returns the record ``--json`` writes.

    ``progress``: an optional ``rich.progress.Progress`` to advance, one task per row.
    """
    settings.check()
    import numba

    if settings.threads is not None:
        numba.set_num_threads(settings.threads)
    threads = numba.get_num_threads()
    torch = _torch(threads) if settings.torch else None
    dtype = np.dtype(settings.dtype)
    configs = select(settings.optimizers)
    count, small = settings.many

    task = progress.add_task("triad", total=len(configs) + 1) if progress else None
    triad = triad_bandwidth(settings.size, dtype, settings.repeats)
    rows = []
    for config in configs:
        if progress:
            progress.update(task, advance=1, description=config.label)
        first_s, first_kind = first_call(config, dtype)
        step = descentlab_step(config, [settings.size], dtype, settings.repeats, settings.warmup)
        many = descentlab_step(config, [small] * count, dtype, settings.repeats, settings.warmup)
        one = descentlab_step(config, [small * count], dtype, settings.repeats, settings.warmup)
        moved = config.bytes_per_element(dtype) * settings.size
        row: dict[str, Any] = {
            "optimizer": config.label,
            "algorithm": config.algorithm,
            "kwargs": config.kwargs,
            "bytes_per_element": config.bytes_per_element(dtype),
            "first_call_s": first_s,
            "first_call": first_kind,
            "step_ms": step.median_s * 1e3,
            "gb_per_s": moved / step.median_s / 1e9,
            "floor_percent": 100 * (moved / triad) / step.median_s,
            "many_ms": many.median_s * 1e3,
            "one_ms": one.median_s * 1e3,
            "many_over_one": many.median_s / one.median_s,
        }
        if torch is not None:
            timings = torch_steps(config, settings.size, dtype, settings.repeats,
                                  settings.warmup)
            row["torch_ms"] = {k: (t.median_s * 1e3 if t else None) for k, t in timings.items()}
            row["torch_over_descentlab"] = {
                k: (t.median_s / step.median_s if t else None) for k, t in timings.items()}
            best = torch_best_flavour(config)
            if best is not None:
                many_t = torch_step(config, [small] * count, dtype, best, settings.repeats,
                                    settings.warmup)
                one_t = torch_step(config, [small * count], dtype, best, settings.repeats,
                                   settings.warmup)
                row["torch_many_over_one"] = {
                    "flavour": best, "many_ms": many_t.median_s * 1e3,
                    "one_ms": one_t.median_s * 1e3, "ratio": many_t.median_s / one_t.median_s}
        rows.append(row)
    if progress:
        progress.update(task, advance=1, description="done")
    return {
        "machine": _machine(threads, torch),
        "settings": {**asdict(settings), "threads": threads},
        "triad_gb_per_s": triad / 1e9,
        "rows": rows,
    }


def _torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _machine(threads: int, torch) -> dict[str, Any]:
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch is not None else None,
    }


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def render(result: dict[str, Any]):
    """The result as a rich Table."""
    from rich.table import Table

    s = result["settings"]
    m = result["machine"]
    count, small = s["many"]
    table = Table(
        title=f"optimizer step, {s['size']:,} {s['dtype']} elements, {m['threads']} threads "
              f"({m['cpu']}); triad floor {result['triad_gb_per_s']:.1f} GB/s",
        caption=f"median of {s['repeats']} after {s['warmup']} warm-up steps. many/one: "
                f"{count} arrays of {small:,} elements against one of {count * small:,}. "
                "torch/ours: torch.optim's time over descentlab's (above 1: descentlab faster).",
    )
    has_torch = any("torch_ms" in r for r in result["rows"])
    for name in ("optimizer", "first call", "B/elem", "ms", "GB/s", "% floor", "many/one"):
        table.add_column(name, justify="left" if name == "optimizer" else "right")
    if has_torch:
        for name in ("torch single", "foreach", "fused", "torch/ours (best)",
                     "torch many/one"):
            table.add_column(name, justify="right")
    for r in result["rows"]:
        cells = [r["optimizer"], f"{r['first_call_s']:.2f} s ({r['first_call']})",
                 str(r["bytes_per_element"]), _ms(r["step_ms"]), f"{r['gb_per_s']:.1f}",
                 f"{r['floor_percent']:.0f} %", _ratio(r["many_over_one"])]
        if has_torch:
            t = r["torch_ms"]
            best = min((v for v in t.values() if v is not None), default=None)
            many = r.get("torch_many_over_one")
            cells += [_ms(t["single"]), _ms(t["foreach"]), _ms(t["fused"]),
                      _ratio(best / r["step_ms"] if best is not None else None),
                      f"{many['ratio']:.2f}x ({many['flavour']})" if many else "–"]
        table.add_row(*cells)
    return table
