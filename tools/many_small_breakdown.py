"""Where the time of the many-small-arrays step goes: the fused executor alone against the whole
``optimizer.step`` (validation and per-parameter bookkeeping included).

    python tools/many_small_breakdown.py [COUNT SIZE]      (default 1000 4096)

For SGD with momentum and Adam, prints the median time of: one step of COUNT arrays of SIZE
float32 elements through ``optimizer.step``; the same step through the executor alone (state and
coefficients prepared beforehand); and one step of a single array of COUNT x SIZE elements, all
timed in turns.
"""

from __future__ import annotations

import sys

import numpy as np

from descentlab import optim
from descentlab.bench.steps import interleaved


def measure(name: str, kwargs: dict, count: int, size: int, repeats: int = 60) -> str:
    rng = np.random.default_rng(0)
    cls = optim.OPTIMIZERS[name]
    many = [rng.random(size, dtype=np.float32) for _ in range(count)]
    many_grads = [rng.random(size, dtype=np.float32) for _ in range(count)]
    one = [rng.random(size * count, dtype=np.float32)]
    one_grads = [rng.random(size * count, dtype=np.float32)]
    opt_many, opt_one = cls(many, **kwargs), cls(one, **kwargs)
    opt_many.step(many_grads)  # creates the state
    states = [opt_many.state[i] for i in range(count)]
    columns = [[s[n] for s in states] if n in states[0] else None for n in cls.rule.arrays]
    h = cls.rule.coefficients(opt_many.param_groups[0], dict(states[0]), float)
    timings = interleaved({
        "step many": lambda: opt_many.step(many_grads),
        "executor many": lambda: opt_many.executor.run(
            cls.rule, h, (0, 0), many, many_grads, columns),
        "step one": lambda: opt_one.step(one_grads),
    }, repeats, warmup=3)
    ms = {k: t.median_s * 1e3 for k, t in timings.items()}
    one_ms = ms["step one"]
    return (f"{name}: step many {ms['step many']:.2f} ms ({ms['step many'] / one_ms:.2f}x), "
            f"executor only many {ms['executor many']:.2f} ms "
            f"({ms['executor many'] / one_ms:.2f}x), step one {one_ms:.2f} ms")


def main(count: int = 1000, size: int = 4096) -> None:
    for name, kwargs in (("SGD", {"momentum": 0.9}), ("Adam", {})):
        print(measure(name, kwargs, count, size))


if __name__ == "__main__":
    if len(sys.argv) not in (1, 3):
        sys.exit(__doc__)
    main(*(int(a) for a in sys.argv[1:]))
