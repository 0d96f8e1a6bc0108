"""How far descentlab's trajectories are from torch.optim's, per algorithm and dtype.

    python tools/trajectory_errors.py

Runs every case of tests/optim_cases.py and prints, per algorithm and dtype, the largest
difference from the golden torch.optim trajectory (tests/data/golden_torch.npz) over all
cases, steps, parameters and state tensors, relative to the largest magnitude along that
trajectory (the measure the tests bound by 1e-12 for float64 and 1e-5 for float32).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from optim_cases import TORCH_CASES  # noqa: E402
from trajectories import descentlab_trajectory  # noqa: E402


def main() -> None:
    worst: dict[tuple[str, str], float] = defaultdict(float)
    with np.load(ROOT / "tests" / "data" / "golden_torch.npz", allow_pickle=False) as golden:
        version = str(golden["torch_version"])
        for case in TORCH_CASES:
            for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
                for key, ours in descentlab_trajectory(case, dtype).items():
                    if key.endswith("/step"):
                        continue
                    ref = golden[f"{case.name}/{dtype.name}/{key}"].astype(np.float64)
                    scale = np.nanmax(np.abs(ref), initial=0.0)
                    if scale > 0:
                        err = np.nanmax(np.abs(ours - ref), initial=0.0) / scale
                        worst[case.algorithm, dtype.name] = max(worst[case.algorithm, dtype.name],
                                                                float(err))
    print(f"largest relative difference from torch.optim {version} "
          f"({len(TORCH_CASES)} cases x 30 steps)")
    print(f"{'algorithm':<10}{'float64':>12}{'float32':>12}")
    for algorithm in dict.fromkeys(c.algorithm for c in TORCH_CASES):
        print(f"{algorithm:<10}{worst[algorithm, 'float64']:>12.2e}"
              f"{worst[algorithm, 'float32']:>12.2e}")


if __name__ == "__main__":
    main()
