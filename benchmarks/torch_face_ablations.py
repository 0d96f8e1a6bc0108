"""What a choice of descentlab.torch's CPU step is worth, measured against the step without it
on the very same optimizer and arrays, its steps alternating between the two ways.

    python benchmarks/torch_face_ablations.py [--repeats 155]

Measured now: ``versions first``, a planned step telling autograd of its writes
(``increment_version``) before its kernel rather than after it, as before 2026-12-06. "Without"
is emulated by deferring that call to the end of the step: a list append and a loop more, well
under a microsecond.

Why on the same arrays: on a virtual machine where memory is placed matters. Two optimizers made
alike, one after the other, stepped 0.98-1.07x apart (the one made second faster, more often
than not), more than most choices are worth; the same optimizer stepped two ways has no such
difference. The "A/A" line steps one optimizer through the two wrappers with nothing
switched: what the alternation itself reads as (the closures, cold caches after the other's
step), the floor under which a ratio means nothing.

Each line times torch.optim's best CPU implementation (fused where it has one, else foreach),
then the optimizer without and with the choice, in turns whose order rotates and reverses, each
after a torch operation on other memory (as a step follows ``backward()``), and prints the
median over the turns of the paired ratio "without / with" (above 1: the choice helps).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch_face_steps import make, turn_times  # the benchmark beside this file

import descentlab.torch as dt
from descentlab.bench.configs import TORCH_FUSED
from descentlab.torch import optimizers
from descentlab.torch.torch_threads import DESCRIPTION


def _versions_last(step, switched: bool):
    """``step`` with autograd's version counters moved after the kernel (``switched``), or
    through the same wrapper with nothing moved."""
    increment = optimizers.increment_version

    def deferred():
        pending: list = []
        if switched:
            optimizers.increment_version = pending.append
        try:
            step()
        finally:
            optimizers.increment_version = increment
            for tensors in pending:
                increment(tensors)

    return deferred


def compare(name: str, elements: int, repeats: int, switched: bool = True) -> str:
    best = {"fused": True} if name in TORCH_FUSED else {"foreach": True}
    theirs = make(getattr(torch.optim, name), elements, **best).step
    optimizer = make(dt.OPTIMIZERS[name], elements)
    without = _versions_last(optimizer.step, switched)
    with_choice = _versions_last(optimizer.step, False)
    backward = torch.ones(1 << 20)  # stands for the end of a backward pass
    t, w, c = turn_times([theirs, without, with_choice], repeats, lambda: backward.mul_(1.0))
    label = "versions first" if switched else "A/A"
    return (f"{label:15s} {name:8s} {elements:>10,d}  without {np.median(w) * 1e3:7.3f} ms  "
            f"with {np.median(c) * 1e3:7.3f} ms  without/with {np.median(w / c):5.3f}   "
            f"torch.optim ({next(iter(best))}) over with: {np.median(t / c):4.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=155)
    args = parser.parse_args()
    print(f"float32, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"descentlab.torch runs on {DESCRIPTION}")
    for name in ("RMSprop", "Adagrad", "Adam"):
        print(compare(name, 1 << 20, args.repeats, switched=False), flush=True)
        print(compare(name, 1 << 20, args.repeats), flush=True)


if __name__ == "__main__":
    main()
