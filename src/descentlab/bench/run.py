"""Run the benchmark and present it: one measurement pass, a rich table, a JSON record."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..optim.optimizer import NONFINITE
from .configs import Config, select
from .steps import (
    descentlab_step,
    first_call,
    interleaved,
    mirrored,
    torch_and_face_steps,
    torch_best_flavour,
    torch_face_step,
    torch_step,
)
from .stream import triad_bytes, triad_step


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
    nonfinite: str = "raise"  # descentlab's check of the gradients ("off": none, as torch)

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
        if self.nonfinite not in NONFINITE:
            raise ValueError(f"--nonfinite must be one of {', '.join(NONFINITE)}, "
                             f"got {self.nonfinite!r}")
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

    task = progress.add_task(configs[0].label, total=len(configs)) if progress else None
    rows = []
    for config in configs:
        if progress:
            progress.update(task, description=config.label)
        rows.append(_measure(config, settings, dtype, torch is not None))
        if progress:
            progress.update(task, advance=1)
    return {
        "machine": _machine(threads, torch),
        "settings": {**asdict(settings), "threads": threads},
        # each row measures its own floor in turns with its steps; this is their median
        "triad_gb_per_s": float(np.median([r["triad_gb_per_s"] for r in rows])),
        "rows": rows,
    }


def _measure(config: Config, settings: BenchSettings, dtype: np.dtype,
             with_torch: bool) -> dict[str, Any]:
    first_s, first_kind = first_call(config, dtype)
    flavours = ("single", "foreach", "fused") if with_torch else ()
    # the large case: descentlab and each torch.optim implementation, timed in turns (each
    # made twice, in mirrored order: see ``mirrored``)
    size = [settings.size]
    makers = {"triad": lambda: triad_step(settings.size, dtype)[0],
              "ours": partial(descentlab_step, config, size, dtype, settings.nonfinite)}
    makers |= {f: partial(torch_step, config, size, dtype, f) for f in flavours}
    large = mirrored(makers, settings.repeats, settings.warmup)
    face = _face(config, size, dtype, settings) if with_torch else None
    triad = triad_bytes(settings.size, dtype) / large["triad"].median_s
    # many small arrays against one array of the same total size
    count, small = settings.many
    best = torch_best_flavour(config) if with_torch else None
    # Each library's pair is timed in turns on its own: a step that runs right after a torch
    # step was measured 1.5-2 ms slower (torch's OpenMP threads still spinning, its dirty cache
    # lines), and in a four-way turn only one of the pair would follow torch.
    split = interleaved({"many": descentlab_step(config, [small] * count, dtype,
                                                 settings.nonfinite),
                         "one": descentlab_step(config, [small * count], dtype,
                                                settings.nonfinite)},
                        settings.repeats, settings.warmup)
    if best is not None:
        split |= interleaved(
            {"torch many": torch_step(config, [small] * count, dtype, best),
             "torch one": torch_step(config, [small * count], dtype, best)},
            settings.repeats, settings.warmup)

    ours = large["ours"].median_s
    moved = config.bytes_per_element(dtype) * settings.size
    row: dict[str, Any] = {
        "optimizer": config.label,
        "algorithm": config.algorithm,
        "kwargs": config.kwargs,
        "bytes_per_element": config.bytes_per_element(dtype),
        "first_call_s": first_s,
        "first_call": first_kind,
        "step_ms": ours * 1e3,
        "gb_per_s": moved / ours / 1e9,
        "triad_gb_per_s": triad / 1e9,
        "floor_percent": 100 * (moved / triad) / ours,
        "many_ms": split["many"].median_s * 1e3,
        "one_ms": split["one"].median_s * 1e3,
        "many_over_one": split["many"].median_s / split["one"].median_s,
    }
    if with_torch:
        row["torch_ms"] = {f: (large[f].median_s * 1e3 if large[f] else None) for f in flavours}
        row["torch_over_descentlab"] = {
            f: (large[f].median_s / ours if large[f] else None) for f in flavours}
        row["torch_face_ms"] = face["face"].median_s * 1e3 if face else None
        paired = face.get("torch") if face else None  # torch.optim's best, on the same tensors
        row["torch_paired_ms"] = paired.median_s * 1e3 if paired else None
        row["torch_best_over_face"] = (paired.median_s / face["face"].median_s if paired
                                       else None)
        if best is not None:
            many, one = split["torch many"].median_s, split["torch one"].median_s
            row["torch_many_over_one"] = {"flavour": best, "many_ms": many * 1e3,
                                          "one_ms": one * 1e3, "ratio": many / one}
    return row


def _face(config: Config, size: list[int], dtype: np.dtype,
          settings: BenchSettings) -> dict[str, Any] | None:
    """descentlab.torch's step (the same kernels behind torch.optim's interface, on torch
    tensors), timed in turns with torch.optim's best implementation on the very same tensors
    (``torch_and_face_steps``): on this project's AMD host the face's ratio to torch.optim's
    best moved 0.62-0.93x between two runs when each had tensors of its own. Alone where
    torch.optim lacks the algorithm; None where the face does."""
    pair = torch_and_face_steps(config, size, dtype)
    if pair is not None:
        steps = dict(zip(("torch", "face"), pair, strict=True))
    else:
        steps = {"face": torch_face_step(config, size, dtype)}
    timings = interleaved(steps, settings.repeats, settings.warmup)
    return timings if timings["face"] is not None else None


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
    face_threads = None
    if torch is not None:
        from ..torch.torch_threads import DESCRIPTION as face_threads
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_face_threads": face_threads,  # where descentlab.torch's kernels run
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
              f"({m['cpu']}); triad {result['triad_gb_per_s']:.1f} GB/s; descentlab with "
              f"nonfinite={s.get('nonfinite', 'raise')!r}",
        caption=f"median of {s['repeats']} after {s['warmup']} warm-up steps, each row's "
                "implementations and triad (the floor) timed in turns, each made twice in "
                "mirrored order (where memory lands moves a step by a few %). many/one: "
                f"{count} arrays of {small:,} elements against one of {count * small:,}. "
                "torch/ours: torch.optim's time over descentlab's (above 1: descentlab faster); "
                "descentlab.torch: the same kernels behind torch.optim's interface, on torch "
                f"tensors (run on {m.get('torch_face_threads') or 'no torch here'}), with "
                "fused=True where torch.optim has a fused kernel (its rounding); "
                "torch/face: torch.optim's best (fused, else foreach) over it, the two timed "
                "in turns on the very same tensors.",
    )
    has_torch = any("torch_ms" in r for r in result["rows"])
    for name in ("optimizer", "first call", "B/elem", "ms", "GB/s", "% floor", "many/one"):
        table.add_column(name, justify="left" if name == "optimizer" else "right")
    if has_torch:
        for name in ("torch single", "foreach", "fused", "torch/ours (best)",
                     "descentlab.torch ms", "torch/face (best)", "torch many/one"):
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
                      _ms(r.get("torch_face_ms")), _ratio(r.get("torch_best_over_face")),
                      f"{many['ratio']:.2f}x ({many['flavour']})" if many else "–"]
        table.add_row(*cells)
    return table
