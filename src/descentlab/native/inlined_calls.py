"""``call_inlined(function, arguments)``: a call of a jitable function that LLVM must inline.

Why (BENCHMARKS.md, "Kernels slow for a whole process"): Numba compiles a jitable callee as a
library of its own, loads it into the process, and links a weak copy of its IR into each
caller. A caller's call to that callee binds, when the caller is loaded, to the definition
loaded first. Where the callee is the fused kernels' element loop (``kernels.step_block``),
that first definition is the callee's own first pass: its loop vectoriser has turned the calls
to the float32 root emulation into calls to the emulation's vector forms after the inliner
ran, so that loop makes a function call per vector and spills every live register around it.
The caller's weak copy, optimised again with the caller, has them inlined; it ran 1.2-2.4x
faster, but only a process that loaded the caller from Numba's cache (no earlier definition)
used it.

A call site marked ``alwaysinline`` leaves no call to bind: LLVM inlines the callee's copy in
the caller's own pass, where the vector forms are inlined too.
"""

from __future__ import annotations

from pathlib import Path

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable


@register_jitable(inline="always")  # inlined by Numba, so the marked call is in the caller
def call_inlined(function, arguments):
    """``function(*arguments)`` (Numba only; ``arguments`` a tuple), with the call marked
    ``alwaysinline`` for LLVM.

    A jitable function rather than the intrinsic itself, because the fused kernels' closures
    refer to it: their cache keys pickle it by name, where an intrinsic would pickle with a new
    id per process.
    """
    return _call_inlined(function, arguments)


@intrinsic
def _call_inlined(typingctx, function, arguments):
    if not isinstance(function, types.Function) or not isinstance(arguments, types.BaseTuple):
        return None
    inner = typingctx.resolve_function_type(function, tuple(arguments), {})
    if inner is None:
        return None

    def codegen(context, builder, signature, args):
        implementation = context.get_function(function, inner)
        block = builder.block
        already = len(block.instructions)
        result = implementation(builder, cgutils.unpack_tuple(builder, args[1]))
        # the call is emitted into the block that was current (the callee's error checks
        # branch after it)
        calls = [instruction for instruction in block.instructions[already:]
                 if isinstance(instruction, ir.CallInstr)]
        if not calls:
            raise RuntimeError(f"call_inlined: no call to {function} was emitted")
        calls[-1].attributes.add("alwaysinline")
        return result

    return inner.return_type(function, arguments), codegen


def fingerprint() -> bytes:
    """What compiled code takes from this module, for cache keys (Numba's cache does not notice
    an edited module that a cached function only calls into)."""
    return Path(__file__).read_bytes()
