"""The Dense layers' three matrix products: NumPy against descentlab.nn's compiled kernels, on
the calling thread alone and shared with the helper thread (``descentlab.native.team``).

    python benchmarks/nn_products.py [--batch B] [--width W] [--layers L] [--turns T]

The operands are those of the lab's network (a batch of 64 by 256 units, float32), and as in
training each product of a turn reads another layer's weight (``--layers`` of them, 2.8 MB
for 11, more than a core's level-2 cache). The three ways take turns, in an order that
rotates, after a pause of 50 ms (so that no library's threads still spin from the way
before). Prints the median microseconds per product over the turns, and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from descentlab.nn import matmul as mm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=11)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="passes over the layers a turn")
    args = parser.parse_args()

    rng = np.random.default_rng(0)

    def aligned(shape):
        a = mm.aligned_empty(shape, np.float32)
        a[...] = rng.standard_normal(shape)
        return a

    n = args.width
    ws = [aligned((n, n)) for _ in range(args.layers)]
    xs = [aligned((args.batch, n)) for _ in range(args.layers)]
    dws = [aligned((n, n)) for _ in range(args.layers)]
    products = {
        "x @ W": (lambda i: mm.matmul(xs[i], ws[i]), lambda i: xs[i] @ ws[i]),
        "x.T @ dy": (lambda i: mm.matmul_tn(xs[i], xs[i], dws[i]),
                     lambda i: np.matmul(xs[i].T, xs[i], out=dws[i])),
        "dy @ W.T": (lambda i: mm.matmul_nt(xs[i], ws[i]), lambda i: xs[i] @ ws[i].T),
    }
    shared = mm._SHARED
    ways = ["NumPy", "kernels, 1 thread", "kernels, shared"]
    times = {(p, w): [] for p in products for w in ways}
    for turn in range(args.turns + 1):  # one warm-up turn
        for r in range(len(ways)):
            way = ways[(turn + r) % len(ways)]
            mm._SHARED = shared if way == "kernels, shared" else 1 << 62
            for name, (ours, numpy) in products.items():
                run = numpy if way == "NumPy" else ours
                time.sleep(0.05)
                start = time.perf_counter()
                for _ in range(args.calls):
                    for i in range(args.layers):
                        run(i)
                if turn:
                    times[name, way].append(
                        (time.perf_counter() - start) / (args.calls * args.layers))
    mm._SHARED = shared
    print(f"({args.batch}, {n}) by ({n}, {n}) float32, {args.layers} layers' weights; "
          f"median µs per product over {args.turns} turns")
    print(f"{'product':10s}" + "".join(f"{w:>20s}" for w in ways) + "   NumPy / shared")
    for name in products:
        med = [float(np.median(times[name, w])) * 1e6 for w in ways]
        print(f"{name:10s}" + "".join(f"{m:20.1f}" for m in med) + f"   {med[0] / med[2]:.2f}x")


if __name__ == "__main__":
    main()
