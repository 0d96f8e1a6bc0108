"""One optimizer step of descentlab.torch against torch.optim's fastest CPU implementation.

    python benchmarks/torch_face_steps.py [--elements 33554432] [--repeats 9]

One float32 parameter of ``--elements`` elements with a gradient; torch.optim runs its fused
kernel where it has one (SGD, Adagrad, Adam, AdamW) and foreach otherwise. The two are timed
in turns (median of ``--repeats``), so a slow spell of a shared machine hits both; the ratio
is torch's time over descentlab's (above 1: descentlab is faster).

Each timed step follows a torch operation on other memory, as a step follows
``loss.backward()`` in training: torch's OpenMP workers are then still awake and spinning, which
is the case that matters for a library whose kernels run on another thread pool.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import descentlab.torch as dt
from descentlab.torch.torch_threads import DESCRIPTION

TORCH_FUSED = {"SGD", "Adagrad", "Adam", "AdamW"}


def make(cls, elements: int, **kwargs):
    p = torch.nn.Parameter(torch.randn(elements))
    p.grad = torch.randn(elements)
    return cls([p], **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2**25)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"float32, {args.elements} elements, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; descentlab.torch runs on {DESCRIPTION}")
    backward = torch.ones(1 << 20)  # stands for the end of a backward pass
    for name in [n for n in dt.NAMES if hasattr(torch.optim, n)]:
        best = "fused" if name in TORCH_FUSED else "foreach"
        steps = {best: make(getattr(torch.optim, name), args.elements, **{best: True}),
                 "descentlab": make(dt.OPTIMIZERS[name], args.elements)}
        for optimizer in steps.values():
            for _ in range(3):
                optimizer.step()
        times: dict[str, list[float]] = {key: [] for key in steps}
        for _ in range(args.repeats):
            for key, optimizer in steps.items():
                backward.mul_(1.0)
                start = time.perf_counter()
                optimizer.step()
                times[key].append(time.perf_counter() - start)
        theirs, ours = (float(np.median(times[k])) * 1e3 for k in (best, "descentlab"))
        print(f"{name:9s} torch.optim ({best:7s}) {theirs:7.1f} ms   descentlab.torch "
              f"{ours:6.1f} ms   ratio {theirs / ours:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
