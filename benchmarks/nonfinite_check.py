"""What the non-finite check costs a step: ``Optimizer.step`` with it against without it.

    python benchmarks/nonfinite_check.py [--size N] [--many COUNTxSIZE] [--repeats R]

Every step first scans all gradients for NaN and infinity (``nonfinite="raise"``, the default,
or ``"skip"``): one extra read of each gradient. This script times, in turns on the same
arrays, (a) ``step`` as shipped (``nonfinite="raise"``), (b) the same optimizer's step with
``nonfinite="off"``, and (c) the scan alone, for SGD (the cheapest step, where the scan weighs
most) and Adam, on one big float32 array and on many small ones. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from descentlab import optim
from descentlab.optim.executors.finite import nonfinite_positions


def _seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2**25)
    parser.add_argument("--many", default="1000x4096")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    count, each = (int(x) for x in args.many.split("x"))
    cases = {f"1 x {args.size}": [args.size], f"{count} x {each}": [each] * count}
    rng = np.random.default_rng(0)
    print(f"float32, median of {args.repeats} steps, in turns")
    print(f"{'case':>14} {'optimizer':>9} {'step':>10} {'no scan':>10} {'scan':>10} "
          f"{'step/no scan':>13}")
    for label, sizes in cases.items():
        for name in ("SGD", "Adam"):
            params = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
            grads = [rng.standard_normal(n, dtype=np.float32) * 1e-3 for n in sizes]
            opt = optim.OPTIMIZERS[name](params, lr=1e-6)
            for _ in range(3):
                opt.step(grads)
            unchecked = optim.OPTIMIZERS[name]([p.copy() for p in params], lr=1e-6,
                                               nonfinite="off")
            for _ in range(3):
                unchecked.step(grads)

            timed = {"step": [], "no scan": [], "scan": []}
            for _ in range(args.repeats):
                timed["step"].append(_seconds(opt.step, grads))
                timed["no scan"].append(_seconds(unchecked.step, grads))
                timed["scan"].append(_seconds(nonfinite_positions, grads))
            m = {k: float(np.median(v)) for k, v in timed.items()}
            print(f"{label:>14} {name:>9} {m['step'] * 1e3:8.2f}ms {m['no scan'] * 1e3:8.2f}ms "
                  f"{m['scan'] * 1e3:8.2f}ms {m['step'] / m['no scan']:12.2f}x")


if __name__ == "__main__":
    main()
