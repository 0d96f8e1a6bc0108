"""Record torch.optim's trajectories for every case of tests/optim_cases.py.

    pip install torch==2.13.0      # the CPU build
    python tools/make_golden.py    # writes tests/data/golden_torch.npz

The file holds, for each case and for float64 and float32, the parameters after every step
and every state tensor (NaN while torch has not created it), plus the torch version. It is a
plain .npz (no pickle); the tests read it with allow_pickle=False.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from optim_cases import TORCH_CASES  # noqa: E402
from reference_torch import torch_trajectory  # noqa: E402

OUT = ROOT / "tests" / "data" / "golden_torch.npz"


def main() -> None:
    import torch

    arrays: dict[str, np.ndarray] = {"torch_version": np.array(torch.__version__)}
    for n, case in enumerate(TORCH_CASES, 1):
        for dtype in (np.float64, np.float32):
            for key, value in torch_trajectory(case, dtype).items():
                arrays[f"{case.name}/{np.dtype(dtype).name}/{key}"] = value
        if n % 20 == 0 or n == len(TORCH_CASES):
            print(f"{n}/{len(TORCH_CASES)} cases recorded", file=sys.stderr)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, {len(arrays)} arrays)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
