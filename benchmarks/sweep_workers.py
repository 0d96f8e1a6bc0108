"""Sweep throughput: runs per minute with 1 and with N local workers, in one process run.

    python benchmarks/sweep_workers.py [--workers 2] [--problem deep-sigmoid-digits]
                                       [--trials 8] [--seeds 4] [--repeats 2]

The same sweep (two optimizers on one CPU-bound problem) runs into fresh folders with 1 worker
and with N, alternating, ``--repeats`` times each; it prints runs per minute for each, the
speed-up of the best against the best, and checks that both gave bit-identical metrics.
Each run is single-threaded by design (``experiments.runner``), so the ideal speed-up is N
on N free cores; what is lost is the driver, process start-up and the store's writes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from descentlab.experiments import parse, run_sweep
from descentlab.lab import Store

FIELDS = ("key", "status", "final_metric", "best_metric", "train_loss", "steps_to_target")


def _config(problem: str, trials: int, seeds: int):
    return parse({
        "name": "throughput", "problems": [problem], "trials": trials, "seeds": seeds,
        "optimizers": {
            "Adam": {"lr": {"min": 1e-4, "max": 1e-2, "scaling": "log"}},
            "SGD+momentum": {"optimizer": "SGD", "momentum": 0.9,
                             "lr": {"min": 1e-3, "max": 1e-1, "scaling": "log"}},
        }}, "benchmark")


def _rows(folder: Path) -> list[tuple]:
    with Store(folder) as store:
        return sorted(tuple(r[k] for k in FIELDS) for r in store.sweep_runs("throughput"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--problem", default="deep-sigmoid-digits")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    config = _config(args.problem, args.trials, args.seeds)
    rates: dict[int, list[float]] = {1: [], args.workers: []}
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for workers in (1, args.workers):
                folder = Path(scratch) / f"w{workers}-{repeat}"
                start = time.perf_counter()
                summary = run_sweep(config, folder, workers=workers)
                seconds = time.perf_counter() - start
                rates[workers].append(summary.ran / seconds * 60)
                results[workers] = _rows(folder)
                print(f"workers={workers}: {summary.ran} runs in {seconds:.1f} s = "
                      f"{rates[workers][-1]:.1f} runs/min", flush=True)
    identical = results[1] == results[args.workers]
    best1, bestn = max(rates[1]), max(rates[args.workers])
    print(f"\nproblem {args.problem}, {summary.ran} runs per sweep")
    print(f"runs/min: 1 worker {best1:.1f}, {args.workers} workers {bestn:.1f}")
    pairs = ", ".join(f"{n / o:.2f}" for o, n in zip(rates[1], rates[args.workers],
                                                     strict=True))
    print(f"speed-up {args.workers} workers / 1: {bestn / best1:.2f}x (each pair: {pairs})")
    print(f"bit-identical metrics: {identical}")


if __name__ == "__main__":
    main()
