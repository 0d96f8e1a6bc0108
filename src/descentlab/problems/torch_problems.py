"""The torch lab's networks as benchmark problems (registered when PyTorch is installed).

- ``cnn-digits-torch``: ``SmallCNN`` (relu) on digits' 8x8 images; validation accuracy (max);
  15 epochs of batches of 64.
- ``mlp-mnist1d-torch``: a 3 x 256 relu ``MLP`` on MNIST-1D; validation accuracy; 20 epochs.
- ``rnn-adding-torch`` and ``lstm-adding-torch``: a tanh RNN and an LSTM (32 units) on the
  adding problem with sequences of 50 steps; validation accuracy (within 0.04 of the target);
  6 epochs of batches of 64.

The sweep's optimizer is descentlab's NumPy one: ``params`` are zero-copy NumPy views of the
model's parameters, so its in-place updates are the model's, and ``loss_and_grad`` runs
torch's forward and backward passes. They run on one torch thread (restored afterwards), as
the built-ins run on one BLAS thread: a convolution's sums depend on the thread count, and a
sweep promises the same bits in every process. torch is imported only when a problem is set
up, so that listing the registry stays fast.
"""

from __future__ import annotations

import contextlib
import functools

from .base import Model, Problem, register
from .builtin import _training_rows

LENGTH = 50  # the adding problems' sequence length


@contextlib.contextmanager
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def _data(task: str):
    from ..torch import lab

    with _one_thread():
        if task == "cnn-digits":
            return lab.image_splits(0)
        if task == "mlp-mnist1d":
            return lab.mnist1d_splits(0)
        return lab.adding_splits(LENGTH, 0)


def _setup(task: str, network: int, seed: int) -> Model:
    import torch

    from ..torch import lab

    data = _data(task)
    with torch.random.fork_rng(), _one_thread():  # the caller's torch RNG is left alone
        torch.manual_seed(seed)
        model = lab.networks(task, LENGTH)[network].build()
    params = list(model.parameters())
    x, y = data.train

    def loss_and_grad(rows):
        with _one_thread():
            model.zero_grad(set_to_none=True)
            if rows is None:
                xb, yb = x, y
            else:
                index = torch.from_numpy(rows)
                xb, yb = x[index], y[index]
            loss = data.loss(model(xb), yb)
            loss.backward()
        return loss.item(), [p.grad.numpy() for p in params]

    def accuracy(split):
        def measure() -> float:
            with _one_thread():
                return lab.evaluate(model, data, split)[1]
        return measure

    return Model([p.detach().numpy() for p in params], loss_and_grad,
                 accuracy("validation"), accuracy("test"))


TORCH_PROBLEMS = (
    Problem("cnn-digits-torch", functools.partial(_setup, "cnn-digits", 1),
            metric="validation accuracy", goal="max", target=0.95, epochs=15,
            examples=_training_rows(1797), batch_size=64,
            description="A small CNN (two 3x3 convolutions, relu) in PyTorch on digits' 8x8 "
                        "images."),
    Problem("mlp-mnist1d-torch", functools.partial(_setup, "mlp-mnist1d", 1),
            metric="validation accuracy", goal="max", target=0.6, epochs=20,
            examples=_training_rows(5000), batch_size=64,
            description="3 hidden relu layers of 256 units in PyTorch on MNIST-1D."),
    Problem("rnn-adding-torch", functools.partial(_setup, "rnn-adding", 0),
            metric="validation accuracy", goal="max", target=0.5, epochs=6, examples=6400,
            batch_size=64,
            description=f"A tanh RNN (32 units) in PyTorch on the adding problem, "
                        f"{LENGTH} steps; correct within 0.04 of the target."),
    Problem("lstm-adding-torch", functools.partial(_setup, "rnn-adding", 1),
            metric="validation accuracy", goal="max", target=0.5, epochs=6, examples=6400,
            batch_size=64,
            description=f"An LSTM (32 units) in PyTorch on the adding problem, {LENGTH} "
                        f"steps; correct within 0.04 of the target."),
)

for _problem in TORCH_PROBLEMS:
    register(_problem, replace=True)
