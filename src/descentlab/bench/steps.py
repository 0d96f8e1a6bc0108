"""Timing optimizer steps: descentlab's fused executor, its torch.optim face
(``descentlab.torch``), and torch.optim's implementations."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from ..optim import OPTIMIZERS
from .configs import TORCH_FUSED, Config

Step = Callable[[], None]


@dataclass
class Timing:
    median_s: float
    times_s: list[float]


# Before each timed call the benchmark pauses this long. Thread pools keep spinning for a
# while after their parallel region ends (torch's GNU OpenMP workers for 2-5 ms on this
# project's 2-core VM): a Numba-pool step started inside that window shares the cores with
# them and took up to 3 ms longer (15.6 against 12.6 ms for a 2^25 SGD step). The pause lets
# every call start on quiet cores, whichever ran before. (descentlab.torch avoids the window
# itself by running on torch's threads: torch/torch_threads.py.)
SETTLE_S = 0.01


def interleaved(steps: dict[Hashable, Step | None], repeats: int,
                warmup: int) -> dict[Hashable, Timing | None]:
    """Median wall time of each step function, taken in turns.

    Each repeat times every function once, one after the other, so that a slow spell of a
    shared machine hits all of them alike and their ratios stay meaningful. None stays None.
    """
    live = {name: step for name, step in steps.items() if step is not None}
    for _ in range(warmup):
        for step in live.values():
            step()
    times: dict[Hashable, list[float]] = {name: [] for name in live}
    for _ in range(repeats):
        for name, step in live.items():
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: (Timing(float(np.median(times[name])), times[name]) if name in live else None)
            for name in steps}


def mirrored(makers: dict[Hashable, Callable[[], Step | None]], repeats: int, warmup: int,
             timer: Callable[..., dict[Hashable, Timing | None]] | None = None
             ) -> dict[Hashable, Timing | None]:
    """The timings of the steps ``makers`` make, each made twice: in the order of ``makers``,
    then in the reverse order. A name's time in a turn is the mean of its two steps' times in
    that turn. ``timer(steps, repeats, warmup)`` times the steps in turns (default
    :func:`interleaved`; ``benchmarks/torch_face_steps.py`` passes its own, whose turns follow
    a torch operation).

    Why: on a virtual machine, where a step's memory lands matters. Two torch.optim
    optimizers made alike, one right after the other, stepped 0.98-1.07x apart at 2^25
    elements (the one made second faster, more often than not), and made once each in a fixed
    order, the same implementation would always have its memory allocated first. The price:
    every step's arrays exist twice while they are timed.
    """
    names = list(makers)
    steps = {(name, 0): makers[name]() for name in names}
    steps |= {(name, 1): makers[name]() for name in reversed(names)}
    timings = (timer or interleaved)(steps, repeats, warmup)
    merged: dict[Hashable, Timing | None] = {}
    for name in names:
        first, second = timings[(name, 0)], timings[(name, 1)]
        if first is None or second is None:
            merged[name] = None
            continue
        per_turn = (np.array(first.times_s) + np.array(second.times_s)) / 2
        merged[name] = Timing(float(np.median(per_turn)), per_turn.tolist())
    return merged


def arrays(sizes: list[int], dtype: np.dtype, seed: int) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [rng.standard_normal(n).astype(dtype) for n in sizes]
    return params, grads


def first_call(config: Config, dtype: np.dtype) -> tuple[float, str]:
    """Seconds of the first step in this process (compiling, or loading Numba's cache), on a
    tiny array so that the step itself costs nothing; and which of the two it was."""
    from ..optim.executors import shares

    before = dict(shares._MEMBERS)
    p = np.zeros(8, dtype)
    opt = OPTIMIZERS[config.algorithm]([p], **config.kwargs)
    start = time.perf_counter()
    opt.step([np.ones_like(p)])
    seconds = time.perf_counter() - start
    new = [member for key, member in shares._MEMBERS.items() if key not in before]
    if not new:
        return seconds, "in memory"
    hits = sum(member.function.cache_hits for member in new)
    return seconds, "cache" if hits else "compiled"


def descentlab_step(config: Config, sizes: list[int], dtype: np.dtype,
                    nonfinite: str = "raise") -> Step:
    """A function that steps descentlab's optimizer over new arrays of ``sizes``."""
    params, grads = arrays(sizes, dtype, seed=0)
    opt = OPTIMIZERS[config.algorithm](params, **config.kwargs, nonfinite=nonfinite)
    return lambda: opt.step(grads)


def torch_best_flavour(config: Config) -> str | None:
    """torch.optim's fastest CPU implementation of the algorithm (None: not in torch)."""
    import torch

    if getattr(torch.optim, config.algorithm, None) is None:
        return None
    return "fused" if config.algorithm in TORCH_FUSED else "foreach"


def _parameters(sizes: list[int], dtype: np.dtype) -> list:
    """torch Parameters of ``sizes`` with gradients, the same numbers ``arrays`` draws."""
    import torch

    params, grads = arrays(sizes, dtype, seed=0)
    tensors = []
    for p, g in zip(params, grads, strict=True):
        tensor = torch.nn.Parameter(torch.from_numpy(p))
        tensor.grad = torch.from_numpy(g)
        tensors.append(tensor)
    return tensors


def torch_face_step(config: Config, sizes: list[int], dtype: np.dtype) -> Step | None:
    """A function that steps ``descentlab.torch``'s optimizer (the torch.optim face of the same
    kernels) over new tensors of ``sizes``; None where the face has no such class."""
    face = _face_optimizer(config, _parameters(sizes, dtype))
    return None if face is None else face.step


def _face_optimizer(config: Config, params: list):
    """``descentlab.torch``'s optimizer of ``params`` (None where it has no such class).

    Where torch.optim has a fused kernel the face gets ``fused=True`` too, as a user of that
    kernel would write it: the flag makes the face round its float32 roots as that kernel
    does (correctly, not as torch.sqrt), so the two compute the same thing."""
    from ..torch import OPTIMIZERS as FACE

    cls = FACE.get(config.algorithm)
    flags = {"fused": True} if config.algorithm in TORCH_FUSED else {}
    return None if cls is None else cls(params, **config.kwargs, **flags)


def adopt_state(source, optimizers: list) -> None:
    """Make each of ``optimizers`` step ``source``'s state tensors: after one step of each
    (so that every one has made its state), each state tensor shaped like its parameter is
    replaced by ``source``'s under the same key. All of them must step the same parameters.

    Why: where a step's memory lands moves its time by more than two implementations differ
    (see :func:`mirrored`); on the very same tensors only the implementations differ.
    Raises RuntimeError where an optimizer keeps other state tensors than ``source``.
    """
    source.step()
    for optimizer in optimizers:
        optimizer.step()
    for group in source.param_groups:
        for p in group["params"]:
            theirs = _arrays(source.state[p], p)
            for optimizer in optimizers:
                if set(_arrays(optimizer.state[p], p)) != set(theirs):
                    raise RuntimeError(f"{type(optimizer).__name__} keeps other state tensors "
                                       f"than {type(source).__name__} ({sorted(theirs)})")
                optimizer.state[p].update(theirs)


def _arrays(state: dict, p) -> dict:
    """The tensors of ``state`` shaped like parameter ``p``."""
    import torch

    return {key: value for key, value in state.items()
            if torch.is_tensor(value) and value.shape == p.shape}


def torch_and_face_steps(config: Config, sizes: list[int],
                         dtype: np.dtype) -> tuple[Step, Step] | None:
    """torch.optim's best CPU implementation of the algorithm and ``descentlab.torch``'s
    optimizer (flagged as :func:`torch_face_step` flags it), stepping the very same
    parameters, gradients and state tensors (:func:`adopt_state`); None where either is
    missing."""
    best = torch_best_flavour(config)
    theirs = _torch_optimizer(config, _parameters(sizes, dtype), best) if best else None
    face = _face_optimizer(config, theirs.param_groups[0]["params"]) if theirs else None
    if face is None:
        return None
    adopt_state(theirs, [face])
    return theirs.step, face.step


def torch_step(config: Config, sizes: list[int], dtype: np.dtype, flavour: str) -> Step | None:
    """A function that steps one torch.optim implementation ("single", "foreach" or "fused")
    over new tensors of ``sizes``; None where torch.optim does not have it."""
    optimizer = _torch_optimizer(config, _parameters(sizes, dtype), flavour)
    return None if optimizer is None else optimizer.step


def _torch_optimizer(config: Config, params: list, flavour: str):
    """torch.optim's optimizer of ``params`` in one implementation ("single", "foreach" or
    "fused"); None where torch.optim does not have it."""
    import torch

    cls = getattr(torch.optim, config.algorithm, None)
    if cls is None or (flavour == "fused" and config.algorithm not in TORCH_FUSED):
        return None
    flags = {"single": {"foreach": False}, "foreach": {"foreach": True},
             "fused": {"fused": True}}[flavour]
    return cls(params, **config.kwargs, **flags)
