"""One descentlab.torch step as this tree builds it against another tree's, with torch.optim's.

    python benchmarks/torch_face_versions.py --baseline DIR [--optimizer RMSprop]
        [--elements 1048576] [--tensors 1] [--turns 601] [--seed 0]

``DIR`` is the ``src`` folder of another checkout (say ``git worktree add /tmp/base HEAD`` and
``/tmp/base/src``). Its ``descentlab`` package is copied as ``descentlab_baseline`` into a
folder of the system's temporary directory named for ``DIR`` and imported beside this tree's
(the package's imports are relative, so the copy runs its own code throughout): both versions
step in one process. The copy is made again only when ``DIR`` changed, so Numba's cache keeps
its kernels from run to run. Take the figures of a second run. The first compiles the copy's
kernels: an A/A first run at 4096 elements gave 0.839, the next ones 0.997-1.003. A baseline
older than ``native/inlined_calls.py`` is worse: its kernels that take a root ran 1.2-2.4x
slower in the process that compiled them (BENCHMARKS.md, "Kernels slow for a whole process").

torch.optim's foreach step, the baseline's and this tree's descentlab.torch step the very same
float32 parameters, gradients and state tensors (``adopt_state``), each after a torch operation
on other memory, as a step follows ``loss.backward()``. The order of the three is drawn anew at
every turn: with a fixed order that rotates and reverses, a copy of one optimizer took 35 µs in
one position against 22 µs in the others on this project's AMD host (4096 elements), where
random orders gave the copies equal times. Medians over the turns; the last column is
this tree's time over the baseline's (below 1: this tree is faster). Run it with ``--baseline``
pointing at this very tree for the A/A line that shows what is left of the noise.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch_face_steps import WARMUP  # the benchmark beside this file

import descentlab.torch as this_tree
from descentlab.bench.steps import adopt_state


def load_baseline(src: Path):
    """``src/descentlab`` as the package ``descentlab_baseline``, and its torch face: a copy
    kept under the temporary directory, made again when a source file changed."""
    package = src / "descentlab"
    if not (package / "torch" / "optimizers.py").is_file():
        raise SystemExit(f"--baseline {src}: no descentlab/torch/optimizers.py there (give the "
                         f"src folder of a descentlab checkout)")
    sources = sorted(package.rglob("*.py"))
    stamp = hashlib.sha256(str(src.resolve()).encode())
    for path in sources:
        stamp.update(path.read_bytes())
    folder = Path(tempfile.gettempdir()) / "descentlab_baseline" / stamp.hexdigest()[:16]
    if not (folder / "descentlab_baseline").is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(package, folder / "descentlab_baseline",
                        ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(folder))
    return importlib.import_module("descentlab_baseline.torch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True,
                        help="the src folder of the checkout to compare with")
    parser.add_argument("--optimizer", default="RMSprop", choices=sorted(this_tree.OPTIMIZERS),
                        help="which optimizer (default RMSprop)")
    parser.add_argument("--elements", type=int, default=2**20,
                        help="elements of each parameter (default 2^20)")
    parser.add_argument("--tensors", type=int, default=1, help="parameters (default 1)")
    parser.add_argument("--turns", type=int, default=601, help="timed turns (default 601)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the turns' orders")
    args = parser.parse_args()
    if args.elements < 1 or args.tensors < 1 or args.turns < 1:
        parser.error("--elements, --tensors and --turns must be at least 1")

    baseline = load_baseline(args.baseline)
    params = []
    for _ in range(args.tensors):
        p = torch.nn.Parameter(torch.randn(args.elements))
        p.grad = torch.randn(args.elements)
        params.append(p)
    theirs = getattr(torch.optim, args.optimizer)(params, foreach=True)
    before = baseline.OPTIMIZERS[args.optimizer](params)
    now = this_tree.OPTIMIZERS[args.optimizer](params)
    adopt_state(theirs, [before, now])
    steps = [theirs.step, before.step, now.step]
    for step in steps:
        for _ in range(WARMUP):
            step()
    backward = torch.ones(1 << 20)  # the torch operation on other memory before each step
    times: list[list[float]] = [[] for _ in steps]
    rng = np.random.default_rng(args.seed)
    for _ in range(args.turns):
        for i in rng.permutation(len(steps)):
            backward.mul_(1.0)
            start = time.perf_counter()
            steps[i]()
            times[i].append(time.perf_counter() - start)
    torch_us, before_us, now_us = (float(np.median(t)) * 1e6 for t in times)
    print(f"{args.optimizer}, {args.tensors} x {args.elements} float32 elements, "
          f"{torch.get_num_threads()} threads, {args.turns} turns in random order")
    print(f"torch.optim (foreach) {torch_us:8.1f} µs")
    print(f"baseline              {before_us:8.1f} µs   "
          f"torch/baseline {torch_us / before_us:5.2f}x")
    print(f"this tree             {now_us:8.1f} µs   torch/this     {torch_us / now_us:5.2f}x"
          f"   this/baseline time {now_us / before_us:.3f}")


if __name__ == "__main__":
    main()
