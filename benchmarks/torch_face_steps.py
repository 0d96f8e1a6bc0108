"""One optimizer step of descentlab.torch against torch.optim's fastest CPU implementation.

    python benchmarks/torch_face_steps.py [--elements 33554432] [--repeats 21] [--same-tensors]

(``--elements 1048576`` gives a mid-size parameter, whose step runs from the L3 cache.)

One float32 parameter of ``--elements`` elements with a gradient; torch.optim runs its fused
kernel where it has one (SGD, Adagrad, Adam, AdamW) and foreach otherwise. The two are timed
in turns whose order alternates, so a slow spell of a shared machine hits both; the ratio is
the median over the turns of torch's time over descentlab's (above 1: descentlab is faster).
descentlab.torch runs as built and, where torch.optim has a fused kernel, with ``fused=True``
too (which changes only how its float32 roots round: correctly, as torch's fused kernels,
instead of as torch.sqrt). Then the step alone for the ten tensors of an MLP, for 1000 small
tensors, and whole training steps (forward, backward, step) of the MLP with either optimizer.

Each timed step follows a torch operation on other memory, as a step follows
``loss.backward()`` in training: torch's OpenMP workers are then still awake and spinning, which
is the case that matters for a library whose kernels run on another thread pool.

Every implementation is made twice, in mirrored order (torch.optim, descentlab.torch, ...,
descentlab.torch, torch.optim), and a turn's time for it is the mean of its two steps: on a
virtual machine where memory lands matters, and two torch.optim optimizers made alike, one
after the other, stepped 0.98-1.07x apart at 2^25 elements (the one made second faster, more
often than not). This script made torch.optim's first until 2026-12-06, which favoured
descentlab.torch. The first line, "torch.optim against itself", measures what is left: the
same mirrored pair of torch.optim's fused AdaGrad against itself.

``--same-tensors`` takes where memory lands out altogether, for the single-parameter lines:
torch.optim's optimizer and descentlab.torch's step the very same parameter, gradient and
state tensors (after one step each, descentlab.torch's state tensors are replaced by
torch.optim's), in turns whose order rotates. On this project's AMD host the mirrored
comparison still moved by 0.76-1.03x from run to run for the same AdaGrad step; on the same
tensors the ratio is the implementations' alone. The parameter then stays in the cache
between steps when it fits there, so at 2^20 elements this measures cache-resident steps.
"""

from __future__ import annotations

import argparse
import copy
import time
from functools import partial

import numpy as np
import torch

import descentlab.torch as dt
from descentlab.bench.configs import TORCH_FUSED
from descentlab.bench.steps import Timing, adopt_state, mirrored
from descentlab.torch.torch_threads import DESCRIPTION

WARMUP = 3  # untimed calls of each step before its turns


def make(cls, elements: int, device: str = "cpu", **kwargs):
    """``cls`` on one float32 parameter of ``elements`` elements on ``device``, with a
    gradient."""
    p = torch.nn.Parameter(torch.randn(elements, device=device))
    p.grad = torch.randn(elements, device=device)
    return cls([p], **kwargs)


def step_of(cls, elements: int, **kwargs):
    """The step of :func:`make`'s optimizer."""
    return make(cls, elements, **kwargs).step


def sharing(name: str, elements: int, best: str) -> list:
    """The steps of torch.optim's ``name`` (with ``best`` on), descentlab.torch's as built and,
    where ``best`` is fused, descentlab.torch's with ``fused=True``: all on one parameter and
    gradient, and all on torch.optim's state tensors (each optimizer steps once first, to make
    its state; then descentlab.torch's state tensors are replaced by torch.optim's)."""
    theirs = make(getattr(torch.optim, name), elements, **{best: True})
    params = theirs.param_groups[0]["params"]
    ours = [dt.OPTIMIZERS[name](params)]
    if best == "fused":
        ours.append(dt.OPTIMIZERS[name](params, fused=True))
    adopt_state(theirs, ours)
    return [theirs.step] + [optimizer.step for optimizer in ours]


def same_tensors(name: str, elements: int, best: str, repeats: int, before=None
                 ) -> tuple[list[float], list[float]]:
    """As :func:`balanced`, for :func:`sharing`'s steps: median ms of each, and the median of
    torch.optim's time over each of descentlab.torch's, turn by turn."""
    times = turn_times(sharing(name, elements, best), repeats, before)
    return ([float(np.median(t)) * 1e3 for t in times],
            [float(np.median(times[0] / t)) for t in times[1:]])


def paired(theirs, ours, repeats: int, before=None) -> tuple[float, float, float]:
    """Median ms of the steps ``theirs()`` and ``ours()`` make and the median of their paired
    ratios (see :func:`balanced`)."""
    (theirs_ms, ours_ms), (ratio,) = balanced([theirs, ours], repeats, before)
    return theirs_ms, ours_ms, ratio


def balanced(makers, repeats: int, before=None) -> tuple[list[float], list[float]]:
    """Median ms of the step each of ``makers`` makes, and for each after the first the median
    over the turns of the first's time over its own.

    Each maker makes two steps (two optimizers), in the order 1, 2, ..., n, n, ..., 2, 1, so
    that none has its memory always allocated first; a turn's time for a maker is the mean of
    its two steps' times in that turn (``descentlab.bench.steps.mirrored``, timed by
    :func:`turn_times`)."""

    def timer(steps: dict, repeats: int, warmup: int) -> dict:
        times = turn_times(list(steps.values()), repeats, before)
        return {key: Timing(float(np.median(t)), t.tolist())
                for key, t in zip(steps, times, strict=True)}

    timings = mirrored(dict(enumerate(makers)), repeats, WARMUP, timer)
    mean = [np.array(timings[i].times_s) for i in range(len(makers))]
    return ([float(np.median(t)) * 1e3 for t in mean],
            [float(np.median(mean[0] / t)) for t in mean[1:]])


def turn_times(runs, repeats: int, before=None) -> list[np.ndarray]:
    """Seconds of each of ``runs`` at each turn (after ``WARMUP`` untimed calls of each):
    every turn runs each once, in an order that rotates and reverses from turn to turn, each
    call after ``before()``."""
    for run in runs:
        for _ in range(WARMUP):
            run()
    times: list[list[float]] = [[] for _ in runs]
    order = list(range(len(runs)))
    for repeat in range(repeats):
        turn = order[repeat % len(runs):] + order[:repeat % len(runs)]
        for key in (turn if repeat % 2 else turn[::-1]):
            if before is not None:
                before()
            start = time.perf_counter()
            runs[key]()
            times[key].append(time.perf_counter() - start)
    return [np.array(t) for t in times]


def training_step(optimizer_class, model: torch.nn.Module, x, y, **kwargs):
    """One forward, backward and step of ``model`` (its own copy) with ``optimizer_class``."""
    model = copy.deepcopy(model)
    optimizer = optimizer_class(model.parameters(), **kwargs)

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def step_only(optimizer_class, model: torch.nn.Module, **kwargs):
    """The step of ``optimizer_class`` on a copy of ``model``'s parameters, with gradients."""
    params = [torch.nn.Parameter(p.detach().clone()) for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    return optimizer_class(params, **kwargs).step


def many_tensors(optimizer_class, count: int, size: int, **kwargs):
    """The step of ``optimizer_class`` on ``count`` float32 tensors of ``size`` elements."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(size)) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size)
    return optimizer_class(params, **kwargs).step


def _line(name: str, best: str, ms: list[float], ratios: list[float]) -> str:
    """One optimizer's line: torch.optim's time, descentlab.torch's and their ratio, and with
    ``fused=True`` where there is a third time."""
    line = (f"{name:9s} torch.optim ({best:7s}) {ms[0]:8.2f} ms   descentlab.torch "
            f"{ms[1]:7.2f} ms   ratio {ratios[0]:5.2f}x")
    if len(ms) > 2:
        line += f"   fused=True {ms[2]:7.2f} ms   ratio {ratios[1]:5.2f}x"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2**25)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--same-tensors", action="store_true",
                        help="time each optimizer pair on the very same tensors, one parameter "
                             "only")
    args = parser.parse_args()
    print(f"float32, {args.elements} elements, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; descentlab.torch runs on {DESCRIPTION}")
    backward = torch.ones(1 << 20)  # stands for the end of a backward pass
    if args.same_tensors:
        print("torch.optim and descentlab.torch on the very same parameter, gradient and state "
              "tensors; descentlab.torch as built and, where torch.optim has a fused kernel, "
              "with fused=True")
        for name in [n for n in dt.NAMES if hasattr(torch.optim, n)]:
            best = "fused" if name in TORCH_FUSED else "foreach"
            ms, ratios = same_tensors(name, args.elements, best, args.repeats,
                                      before=lambda: backward.mul_(1.0))
            print(_line(name, best, ms, ratios), flush=True)
        return
    itself = partial(step_of, torch.optim.Adagrad, args.elements, fused=True)
    ms, (ratio,) = balanced([itself, itself], args.repeats, before=lambda: backward.mul_(1.0))
    print(f"torch.optim against itself (fused Adagrad, made as the pairs below are): "
          f"{ms[0]:.2f} ms, {ms[1]:.2f} ms, ratio {ratio:5.2f}x")
    print("descentlab.torch as built (torch.sqrt's float32 roots, as torch.optim's default "
          "steps) and, where torch.optim has a fused kernel, with fused=True (correctly "
          "rounded roots, as that kernel)")
    for name in [n for n in dt.NAMES if hasattr(torch.optim, n)]:
        best = "fused" if name in TORCH_FUSED else "foreach"
        makers = [partial(step_of, getattr(torch.optim, name), args.elements, **{best: True}),
                  partial(step_of, dt.OPTIMIZERS[name], args.elements)]
        if best == "fused":
            makers.append(partial(step_of, dt.OPTIMIZERS[name], args.elements, fused=True))
        ms, ratios = balanced(makers, args.repeats, before=lambda: backward.mul_(1.0))
        print(_line(name, best, ms, ratios), flush=True)

    # whole training steps, where a step follows backward() as it does in practice
    torch.manual_seed(0)
    width = 1024
    model = torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(width, width),
                                                                torch.nn.Tanh())],
                                torch.nn.Linear(width, 10))
    x, y = torch.randn(64, width), torch.randint(0, 10, (64,))
    count = sum(p.numel() for p in model.parameters())
    print(f"MLP 4x{width} tanh ({count:,} parameters in {len(list(model.parameters()))} "
          f"tensors, batch 64): the optimizer step alone")
    for name, kwargs in (("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adam", {}),
                         ("AdamW", {}), ("Adagrad", {})):
        theirs, ours, ratio = paired(
            partial(step_only, getattr(torch.optim, name), model, fused=True, **kwargs),
            partial(step_only, dt.OPTIMIZERS[name], model, **kwargs), args.repeats * 5)
        print(f"{name:9s} torch.optim (fused  ) {theirs:7.2f} ms   descentlab.torch "
              f"{ours:6.2f} ms   ratio {ratio:5.2f}x   (step alone)", flush=True)
    tensors, size = 1000, 4096
    print(f"{tensors} tensors of {size} elements: the optimizer step alone (the per-tensor work "
          "in Python and the kernel launch dominate)")
    for name, kwargs in (("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adam", {}),
                         ("AdamW", {}), ("Adagrad", {})):
        theirs, ours, ratio = paired(
            partial(many_tensors, getattr(torch.optim, name), tensors, size, fused=True, **kwargs),
            partial(many_tensors, dt.OPTIMIZERS[name], tensors, size, **kwargs), args.repeats)
        print(f"{name:9s} torch.optim (fused  ) {theirs:7.2f} ms   descentlab.torch "
              f"{ours:6.2f} ms   ratio {ratio:5.2f}x   (step alone)", flush=True)
    print(f"MLP 4x{width}: whole training steps")
    for name, kwargs in (("SGD", {"lr": 0.01, "momentum": 0.9}), ("Adam", {}),
                         ("AdamW", {}), ("Adagrad", {})):
        theirs, ours, ratio = paired(
            partial(training_step, getattr(torch.optim, name), model, x, y, fused=True, **kwargs),
            partial(training_step, dt.OPTIMIZERS[name], model, x, y, **kwargs), args.repeats)
        print(f"{name:9s} torch.optim (fused  ) {theirs:7.1f} ms   descentlab.torch "
              f"{ours:6.1f} ms   ratio {ratio:5.2f}x   (training step)", flush=True)


if __name__ == "__main__":
    main()
