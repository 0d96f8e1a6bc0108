"""What ``descentlab.torch.GradientMonitor`` costs a training step, recording every 10 steps.

For each of the torch lab's networks (batch 64): blocks of 100 training steps (forward,
backward, descentlab.torch.Adam step) without a monitor and with one (every=10; in memory only,
and writing to a results store on disk) alternate, so that the machine's drift affects all
three alike. The medians over the repeats are compared. The target (issue 6): at most 5 %.

    python benchmarks/monitor_overhead.py [--repeats 7] [--steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from descentlab.lab import Store
from descentlab.torch import Adam, GradientMonitor
from descentlab.torch.models import MLP, Recurrent, SmallCNN, adding_problem


def workloads():
    """(name, model, x, y, loss) for each network, with a batch of 64."""
    generator = torch.Generator().manual_seed(0)
    x_add, y_add = adding_problem(64, 50, seed=0)
    yield ("SmallCNN, digits 8x8", SmallCNN(10, "relu"), torch.randn(64, 1, 8, 8,
                                                                  generator=generator),
           torch.randint(0, 10, (64,), generator=generator), torch.nn.functional.cross_entropy)
    yield ("3x256 MLP, MNIST-1D", MLP(40, 10, 3, 256, "relu"),
           torch.randn(64, 40, generator=generator),
           torch.randint(0, 10, (64,), generator=generator), torch.nn.functional.cross_entropy)
    yield ("LSTM 32, adding T=50", Recurrent("lstm"), torch.from_numpy(x_add),
           torch.from_numpy(y_add), torch.nn.functional.mse_loss)


def block(model, optimizer, x, y, loss_fn, steps: int) -> float:
    """Seconds per step over ``steps`` steps."""
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100, help="per block (a multiple of 10)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.repeats} x {args.steps} steps per variant")
    print(f"{'network':24} {'plain ms':>9} {'monitor ms':>11} {'overhead':>9} "
          f"{'+store ms':>10} {'overhead':>9}")
    with tempfile.TemporaryDirectory() as folder, Store(folder) as store:
        for name, model, x, y, loss_fn in workloads():
            optimizer = Adam(model.parameters(), lr=1e-3)
            block(model, optimizer, x, y, loss_fn, 20)  # warm up
            times = {"plain": [], "memory": [], "store": []}
            for _ in range(args.repeats):
                for variant in times:
                    monitor = None
                    if variant != "plain":
                        monitor = GradientMonitor(model, every=10, optimizer=optimizer,
                                                  store=store if variant == "store" else None,
                                                  name=name, warn=False)
                    times[variant].append(block(model, optimizer, x, y, loss_fn, args.steps))
                    if monitor is not None:
                        monitor.close()
            plain, memory, stored = (statistics.median(times[k]) for k in times)
            print(f"{name:24} {plain * 1e3:9.3f} {memory * 1e3:11.3f} "
                  f"{memory / plain - 1:9.1%} {stored * 1e3:10.3f} {stored / plain - 1:9.1%}")


if __name__ == "__main__":
    main()
