"""Whether this torch's float32 CPU square root is the one the fused kernels can reproduce.

The rules' ``square_root`` emulates MKL's float32 root as torch 2.13's CPU build computes it on
Intel processors with AVX-512 and on AMD's (``descentlab.optim.rules._torch_sqrt``). Another
torch build, another MKL or another processor may compute it otherwise, so the face turns the
emulation on only after checking, once per process, that it gives torch's result bit for bit
on a probe of inputs where the ways of rounding differ. Otherwise its float32 kernels keep the
correctly rounded root (within one unit in the last place of torch's).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..optim.rules import _torch_sqrt

# one of every 64 floats in [1, 4) (the emulation's errors repeat in every such pair of
# binades), 0, subnormals, the smallest normal binade, the top of the largest (around the sse
# kernel's limit, 0x7F7FF000) and infinity
_PROBE_STRIDE = 64


def _probe() -> np.ndarray:
    binades = np.arange(0x3F800000, 0x40800000, _PROBE_STRIDE, dtype=np.uint32)
    edges = np.concatenate([np.arange(0, 1 << 16, dtype=np.uint32),  # 0 and subnormals
                            np.arange(0x00800000, 0x00810000, dtype=np.uint32),
                            np.arange(0x7F700000, 0x7F710000, dtype=np.uint32),
                            np.arange(0x7F7F0000, 0x7F800001, dtype=np.uint32)])
    return np.concatenate([binades, edges]).view(np.float32)


@functools.cache
def torch_float32_sqrt_emulated() -> bool:
    """True when the kernels' emulation equals ``torch.sqrt`` on this machine's CPU float32
    tensors for every probe input (and the emulation is compiled in at all)."""
    if not _torch_sqrt.available():
        return False
    x = _probe()
    theirs = torch.sqrt(torch.from_numpy(x)).numpy()
    ours = _torch_sqrt.mkl_sqrt(x)
    return bool(np.array_equal(theirs.view(np.uint32), ours.view(np.uint32)))
