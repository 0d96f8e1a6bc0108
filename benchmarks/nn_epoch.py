"""Per-epoch training time: descentlab.nn against the same network in PyTorch, on the CPU.

    python benchmarks/nn_epoch.py [--epochs N] [--depth D] [--width W] [--batch B]

The network of issue 4's target: 10 hidden layers of 256 sigmoid units on scikit-learn's
digits (the training split, 1077 examples, standardised), batch 64, float32, SGD with lr 0.1,
cross-entropy. Three things are timed in turns, one epoch each per turn (same batches):

- ``descentlab``: ``net.loss_and_grad`` + ``optim.SGD.step`` per batch (the bare loop);
- ``descentlab lab``: ``descentlab.lab.train`` for ``--epochs`` epochs in one call, divided
  by the epochs, diagnostics included (per-step gradient norms, the last step's update norms,
  evaluation on the validation split every epoch, the pass at initialisation and the test
  evaluation once);
- ``torch``: ``nn.Sequential`` of Linear + Sigmoid, ``cross_entropy``, ``backward``,
  ``torch.optim.SGD.step`` (its default implementation), with torch's threads set to the
  number of cores Numba uses.

Every timed epoch starts after a pause of ``--settle`` seconds. Without it each library is
timed while the other's worker threads still spin after its last call (OpenBLAS's for NumPy,
OpenMP's for torch) and take one of the two cores: torch measured 2.5x slower right after a
NumPy epoch than on its own.

Prints the median epoch time of each and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from descentlab import data, nn, optim
from descentlab.lab import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15, help="timed epochs (default 15)")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--settle", type=float, default=0.3,
                        help="pause before each timed epoch, seconds (default 0.3)")
    args = parser.parse_args()

    import numba
    import torch

    threads = numba.get_num_threads()
    torch.set_num_threads(threads)
    splits = data.prepare("digits")
    x, y = splits.train.x, splits.train.y
    spec = nn.MLPSpec(64, 10, depth=args.depth, width=args.width, activation="sigmoid",
                      init="glorot_uniform")
    net = nn.MLP(spec, seed=0)
    opt = optim.SGD(net.params, lr=0.1)
    lab_net = nn.MLP(spec, seed=0)
    lab_opt = optim.SGD(lab_net.params, lr=0.1)

    layers = []
    for fan_in, fan_out in zip([64] + [args.width] * args.depth,
                               [args.width] * args.depth + [10], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers[:-1])
    torch_opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    rng = np.random.default_rng(0)

    def ours(order):
        for start in range(0, len(x), args.batch):
            rows = order[start:start + args.batch]
            net.loss_and_grad(x[rows], y[rows])
            opt.step(net.grads)


    def theirs(order):
        index = torch.from_numpy(order)
        for start in range(0, len(x), args.batch):
            rows = index[start:start + args.batch]
            torch_opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(tx[rows]), ty[rows])
            loss.backward()
            torch_opt.step()

    runs = {"descentlab": ours, "torch": theirs}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for turn in range(args.epochs + 2):  # two warm-up turns
        order = rng.permutation(len(x))
        for name, run in runs.items():
            time.sleep(args.settle)
            start = time.perf_counter()
            run(order)
            if turn >= 2:
                times[name].append(time.perf_counter() - start)
    median = {k: float(np.median(v)) for k, v in times.items()}
    # the lab's loop as a study runs it: one call for all epochs (one warm-up epoch first)
    train(lab_net, lab_opt, splits, TrainConfig(epochs=1, batch_size=args.batch))
    time.sleep(args.settle)
    start = time.perf_counter()
    train(lab_net, lab_opt, splits, TrainConfig(epochs=args.epochs, batch_size=args.batch))
    median["descentlab lab"] = (time.perf_counter() - start) / args.epochs
    print(f"{args.depth} x {args.width} sigmoid MLP, digits train split ({len(x)} examples), "
          f"batch {args.batch}, float32, {threads} threads; median of {args.epochs} epochs "
          f"(lab: mean of one {args.epochs}-epoch run)")
    for name in ("descentlab", "descentlab lab", "torch"):
        seconds = median[name]
        print(f"  {name:15s} {seconds * 1e3:7.1f} ms/epoch   torch / this = "
              f"{median['torch'] / seconds:.2f}x")


if __name__ == "__main__":
    main()
