"""The seed articles' example, done right: fit y = X θ + noise with six optimizers.

Each optimizer minimises the mean squared error J(θ) = ‖X θ − y‖² / (2m) from θ = 0; the
result is compared with the exact least-squares solution from numpy.linalg.lstsq. Full-batch
gradient descent is SGD stepped with the gradient over all samples; mini-batch SGD samples 16
rows per step and anneals its learning rate. Its gradients stay noisy to the end, so it stops
about 1e-2 from the solution, where the full-batch methods reach it to rounding.

    python examples/linear_regression.py [--steps N] [--seed S]

Exits with status 1 if any optimizer ends farther from the solution than its tolerance.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from descentlab.data import make_linear_regression
from descentlab.optim import SGD, Adadelta, Adagrad, Adam, CosineAnnealingLR, RMSprop

# (label, optimizer class, hyperparameters, mini-batch size or None for full batch,
#  anneal lr, accepted distance to the solution)
RUNS = [
    ("gradient descent", SGD, {"lr": 0.1}, None, False, 1e-6),
    ("mini-batch SGD", SGD, {"lr": 0.05}, 16, True, 5e-2),
    ("AdaGrad", Adagrad, {"lr": 0.5}, None, False, 1e-6),
    ("RMSprop", RMSprop, {"lr": 0.01}, None, True, 1e-6),
    ("Adadelta", Adadelta, {"lr": 0.3}, None, False, 1e-6),
    ("Adam", Adam, {"lr": 0.05}, None, False, 1e-6),
]


def fit(data, optimizer_class, hyperparameters, batch_size, anneal, steps, seed):
    theta = np.zeros(data.X.shape[1])
    optimizer = optimizer_class([theta], **hyperparameters)
    schedule = CosineAnnealingLR(optimizer, T_max=steps) if anneal else None
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        rows = (slice(None) if batch_size is None
                else rng.choice(len(data.y), size=batch_size, replace=False))
        optimizer.step([data.gradient(theta, rows)])
        if schedule is not None:
            schedule.step()
    return theta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="steps per optimizer")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and mini-batches")
    args = parser.parse_args(argv)

    data = make_linear_regression(n_samples=100, n_features=1, noise=1.0, seed=args.seed)
    optimum = data.least_squares()
    print(f"y = {data.theta_true[0]:g} + {data.theta_true[1]:g} x + N(0, 1), 100 samples")
    print(f"least squares (numpy.linalg.lstsq): θ = {np.round(optimum, 6)}, "
          f"loss {data.loss(optimum):.6f}\n")
    print(f"{'optimizer':<18}{'lr':>8}{'steps':>8}{'final loss':>14}"
          f"{'distance to optimum':>22}{'accepted':>10}")
    failed = []
    for label, cls, hyperparameters, batch_size, anneal, tolerance in RUNS:
        theta = fit(data, cls, hyperparameters, batch_size, anneal, args.steps, args.seed)
        distance = float(np.linalg.norm(theta - optimum))
        lr = f"{hyperparameters['lr']:g}" + ("*" if anneal else "")
        print(f"{label:<18}{lr:>8}{args.steps:>8}{data.loss(theta):>14.6f}{distance:>22.2e}"
              f"{tolerance:>10.0e}")
        if not distance <= tolerance:
            failed.append(label)
    print("\n* learning rate annealed to 0 with CosineAnnealingLR")
    if failed:
        print(f"farther from the optimum than accepted: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("every optimizer ended within its accepted distance of the least-squares solution")
    return 0


if __name__ == "__main__":
    sys.exit(main())
