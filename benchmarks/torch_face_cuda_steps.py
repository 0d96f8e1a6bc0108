"""One optimizer step of descentlab.torch on a CUDA device against torch.optim's there.

    python benchmarks/torch_face_cuda_steps.py [--elements 33554432] [--repeats 50]

Off the CPU the face runs each rule with torch operations, one kernel (and a temporary) per
term, where torch.optim's foreach steps launch one kernel per term for all tensors together
and its fused ones a single kernel. This measures what that costs: one float32 parameter of
``--elements`` elements with a gradient, torch.optim's foreach step and (where it has one) its
fused step, and descentlab.torch's, each the median of ``--repeats`` steps timed with CUDA
events after three untimed ones. Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch_face_steps import TORCH_FUSED, make  # the CPU benchmark beside this file

import descentlab.torch as dt


def step_ms(optimizer, repeats: int) -> float:
    """Median milliseconds of ``optimizer.step()`` on the GPU."""
    for _ in range(3):
        optimizer.step()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        optimizer.step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2**25)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("no CUDA device: this benchmark times steps on a GPU")
    print(f"float32, {args.elements} elements, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name()}")
    for name in [n for n in dt.NAMES if hasattr(torch.optim, n)]:
        foreach = step_ms(make(getattr(torch.optim, name), args.elements, "cuda", foreach=True),
                          args.repeats)
        ours = step_ms(make(dt.OPTIMIZERS[name], args.elements, "cuda"), args.repeats)
        line = (f"{name:9s} torch.optim foreach {foreach:7.3f} ms   descentlab.torch "
                f"{ours:7.3f} ms   foreach/ours {foreach / ours:5.2f}x")
        if name in TORCH_FUSED:
            try:
                fused = step_ms(make(getattr(torch.optim, name), args.elements, "cuda", fused=True),
                                args.repeats)
            except RuntimeError as error:  # torch's Adagrad has a fused kernel on the CPU only
                if "fused" not in str(error):
                    raise
                line += "   (no fused kernel on CUDA)"
            else:
                line += f"   fused {fused:7.3f} ms   fused/ours {fused / ours:5.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
