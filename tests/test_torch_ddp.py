"""descentlab.torch under DistributedDataParallel: two processes with the gloo backend on the
CPU, each training on its half of every global batch, end where a single process training on
the whole global batches ends.

DDP averages the two halves' gradients, which for a mean loss is the gradient of the whole
batch: the two runs differ only in the order of the sums, so in float64 they agree to
rounding. Each worker steps every optimizer configuration in turn, so that the processes are
started once."""

from __future__ import annotations

import os

import pytest
from conftest import require_torch

torch = require_torch()
import descentlab.torch as dt  # noqa: E402

WORLD = 2
STEPS = 20
GLOBAL_BATCH = 16
TOLERANCE = 1e-10  # relative, float64

CONFIGS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 1e-3, "centered": True}),
    ("Adadelta", {"lr": 1.0}),
    ("Lion", {"lr": 1e-3}),
]


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 3)).double()


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    return (torch.randn(GLOBAL_BATCH, 12, generator=generator, dtype=torch.float64),
            torch.randint(0, 3, (GLOBAL_BATCH,), generator=generator))


def _train(model, optimizer, rows: slice) -> None:
    for step in range(STEPS):
        x, y = _batch(step)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimizer.step()


def _worker(rank: int, init_file: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}",
                                         rank=rank, world_size=WORLD)
    try:
        finals = []
        half = GLOBAL_BATCH // WORLD
        for name, kwargs in CONFIGS:
            model = DistributedDataParallel(_model())
            _train(model, dt.OPTIMIZERS[name](model.parameters(), **kwargs),
                   slice(rank * half, (rank + 1) * half))
            finals.append([p.detach().clone() for p in model.module.parameters()])
        if rank == 0:
            torch.save(finals, out)
    finally:
        torch.distributed.destroy_process_group()


# skipped only for a torch built without torch.distributed, and never where CI requires torch
@pytest.mark.skipif(not torch.distributed.is_available()
                    and os.environ.get("DESCENTLAB_REQUIRE_TORCH") != "1",
                    reason="torch built without torch.distributed")
def test_ddp_with_two_processes_equals_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    torch.multiprocessing.spawn(_worker, args=(str(tmp_path / "init"), str(out)),
                                nprocs=WORLD, join=True)
    distributed = torch.load(out)
    for (name, kwargs), params in zip(CONFIGS, distributed, strict=True):
        model = _model()
        _train(model, dt.OPTIMIZERS[name](model.parameters(), **kwargs), slice(None))
        initial = list(_model().parameters())
        for ours, single, start in zip(params, model.parameters(), initial, strict=True):
            assert not torch.equal(single, start)  # it trained
            scale = float(single.detach().abs().max())
            error = float((ours - single.detach()).abs().max()) / scale
            assert error <= TOLERANCE, f"{name}: {error:.3g}"
