"""``fma(a, b, c)``: ``a·b + c`` rounded once, the way torch's CPU kernels round it.

Where torch.optim writes ``x.add_(y, alpha=a)``, ``x.addcmul_(y, z, value=v)`` or
``x.lerp_(y, w)``, torch's CPU kernels compute a fused multiply-add: ``fma(y, a, x)``,
``fma(v·y, z, x)``, ``fma(w, y − x, x)``. Measured on torch 2.13 (CPU capability AVX512, in
float32 and float64, in the vector body and the scalar tail alike): every element equals the
once-rounded result, and 10-20 % of them differ from ``x + a·y`` rounded twice. One unit in the
last place per step is enough to separate float32 trajectories by more than 1e-6 within 50
steps where a step cancels (centered RMSprop's ``v − ḡ²``), so the rules round as torch does.
``x.addcdiv_(y, z, value=v)`` is ``x + v·y / z`` rounded three times: no fma there.

One name, three implementations, so the rules stay one definition:

- Python, NumPy arrays and scalars: a compiled ufunc (NumPy has no fused multiply-add);
- inside Numba-compiled element math: LLVM's ``llvm.fma`` intrinsic, which vectorises to the
  processor's fused multiply-add instruction;
- torch tensors (:mod:`descentlab.torch.torch_math`): ``torch.add(c, b, alpha=a)`` or
  ``torch.addcmul(c, a, b)``, the very operations torch.optim calls.
"""

from __future__ import annotations

import functools

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def fma(a, b, c):
    """``a·b + c`` with a single rounding, element-wise, for NumPy arrays and scalars of
    float32 or float64 (Python floats are cast as NumPy casts them for any ufunc)."""
    return _ufunc()(a, b, c)


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    operands = (a, b, c)
    if not all(isinstance(t, types.Float) for t in operands):
        return None
    # the widest operand's type, as Numba types ``a * b + c``
    result = max(operands, key=lambda t: t.bitwidth)

    def codegen(context, builder, signature, args):
        values = [context.cast(builder, value, t, result)
                  for value, t in zip(args, signature.args, strict=True)]
        kind = values[0].type
        name = "llvm.fma.f32" if result.bitwidth == 32 else "llvm.fma.f64"
        # declared by hand: llvmlite's declare_intrinsic gives llvm.fma a one-operand type
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(kind, [kind, kind, kind]), name)
        return builder.call(function, values)

    return result(a, b, c), codegen


@overload(fma)
def _fma_in_numba(a, b, c):
    if all(isinstance(t, types.Float) for t in (a, b, c)):
        return lambda a, b, c: _llvm_fma(a, b, c)
    return None


@functools.cache
def _ufunc():
    # built on first use, not at import: compiling (or loading from Numba's cache) costs time
    # that programs which never call the array-wise form should not pay
    @numba.vectorize(["float32(float32, float32, float32)", "float64(float64, float64, float64)"],
                     cache=True)
    def fma_elements(a, b, c):
        return _llvm_fma(a, b, c)

    return fma_elements
