"""``square_root(x, h)``: √x correctly rounded, or (``h.torch_sqrt``) as torch's CPU kernel
rounds it, so the torch face's fused kernels follow torch.optim's float32 trajectories exactly.

torch 2.13's CPU build takes ``Tensor.sqrt`` from MKL's vector math library
(``aten/src/ATen/cpu/vml.h``), which is not correctly rounded: in float32 it returns one unit in
the last place less for about 0.6 % of inputs (98,955 of the 2^24 floats in [1, 4) on this
project's AVX-512 machines). Measured against every one of those 2^24 floats, the two binades
above and below them, the subnormals and the top of the range (``tests/test_torch_sqrt.py``),
its result is, bit for bit, one Newton step from the processor's 14-bit reciprocal root
estimate (``vrsqrt14ps``)::

    y = rsqrt14(x);  s = x·y;  r = fma(−s, s, x);  √x ≈ fma(r, y/2, s)

with 0 and +∞ returned as they are, and inputs below 2^-64 scaled by 2^64 first (the result
then by 2^-32: exact, and it keeps ``r`` from underflowing; MKL's results there are the same
algorithm's on the scaled input). Without a fused multiply-add, ``s + r·y/2`` differs in 122
of those inputs. Each model step feeds such one-unit differences back, and a 50-step
trajectory of a small CNN then drifts up to 9e-4 from torch.optim's, far beyond the face's
float32 target of 1e-6.

The estimate is an AVX-512 instruction with no portable equivalent, so the emulation is written
in LLVM IR (below) and reaches Numba's element math as a function whose vector forms LLVM's
loop vectoriser knows (the ``vector-function-abi-variant`` attribute): the fused loop stays
vectorised (``vrsqrt14ps`` on 4, 8 or 16 floats) and only its remainder calls the scalar form.
Where the processor lacks AVX-512, or Numba compiles for another CPU than this one, the
function is the correctly rounded root, and the torch face does not turn the flag on (its
probe compares this function with torch's sqrt before it trusts it:
``descentlab.torch.roots``).

float64 is left correctly rounded: torch's float64 root is another MKL algorithm, and the
face's float64 target (1e-12) is met with correct rounding (≤ 2.8e-15 on the test models).
"""

from __future__ import annotations

import functools
import marshal

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target
from numba.extending import intrinsic, overload

NAME = "descentlab_mkl_sqrt_f32"
_WIDTHS = ((4, 128, "i8"), (8, 256, "i8"), (16, 512, "i16"))  # floats, bits, mask type


def square_root(x, h):
    """√x for NumPy arrays and scalars: as torch's CPU kernel computes it where
    ``h.torch_sqrt`` is true and ``x`` is float32, otherwise correctly rounded (``np.sqrt``).
    """
    if h.torch_sqrt and np.asarray(x).dtype == np.float32:
        return _ufunc()(x)
    return np.sqrt(x)


def available() -> bool:
    """Whether the emulation is compiled in: Numba compiles for this host, which has
    AVX-512 (otherwise :func:`square_root` is the correctly rounded root in both modes)."""
    return numba.config.CPU_NAME is None and bool(llvm.get_host_cpu_features().get("avx512f"))


# -- the LLVM IR ----------------------------------------------------------------------------
# Float constants are written as the doubles LLVM's IR syntax asks for; all are exact floats.
_TWO_64, _TWO_MINUS_64, _TWO_MINUS_32 = "0x43F0000000000000", "0x3BF0000000000000", \
    "0x3DF0000000000000"
_HALF, _INFINITY = "0x3FE0000000000000", "0x7FF0000000000000"
# float32 bit patterns, as integers: 2^-64, and the span from it up to +inf
_TWO_MINUS_64_BITS = str(0x1F800000)
_COMMON_SPAN = str(0x7F800000 - 0x1F800000)


def _kind(lanes: int | None) -> str:
    """The LLVM type of ``lanes`` floats (``float`` for None: the scalar form)."""
    return f"<{lanes} x float>" if lanes else "float"


def _body(lanes: int | None, estimate: str) -> str:
    """The emulation on ``lanes`` floats (None: one); ``estimate`` is the call that puts
    rsqrt14(``x``) in ``%y`` (its ``x`` written as ``{x}``, a placeholder).

    Where every lane holds a normal float of at least 2^-64 (nearly always) it runs the Newton
    step alone; otherwise the ``careful`` block handles each lane's case: 0 and +∞ are returned
    as they are and replaced by 1 inside (rsqrt14 gives ∞ and 0 there, and 0·∞ would raise the
    invalid-operation flag that NumPy reports as a warning); the scale factors are selected
    before they multiply, so no lane overflows either. For a lane of the common kind both
    blocks compute the same operations, so the result does not depend on its neighbours.
    """
    kind = _kind(lanes)
    integers = f"<{lanes} x i32>" if lanes else "i32"

    def constant(value: str, of: str = "float") -> str:
        return f"<{', '.join([f'{of} {value}'] * lanes)}>" if lanes else value

    flag = f"<{lanes} x i1>" if lanes else "i1"
    fma = f"@llvm.fma.v{lanes}f32" if lanes else "@llvm.fma.f32"
    # x is "common" when 2^-64 <= x < +inf: one unsigned comparison of its bits, shifted so
    # that 2^-64 becomes 0 (zero, negatives, NaN and +inf all land at or above the limit)
    any_special = (f"\n  %any_special = call i1 @llvm.vector.reduce.or.v{lanes}i1({flag} %special)"
                   if lanes else "")

    def newton(prefix: str, x: str) -> str:
        return f"""
  {estimate.format(y=f"%{prefix}y", x=x)}
  %{prefix}s = fmul {kind} {x}, %{prefix}y
  %{prefix}h = fmul {kind} %{prefix}y, {constant(_HALF)}
  %{prefix}minus_s = fneg {kind} %{prefix}s
  %{prefix}r = call {kind} {fma}({kind} %{prefix}minus_s, {kind} %{prefix}s, {kind} {x})
  %{prefix}root = call {kind} {fma}({kind} %{prefix}r, {kind} %{prefix}h, {kind} %{prefix}s)"""

    return f"""
  %bits = bitcast {kind} %x to {integers}
  %shifted = sub {integers} %bits, {constant(_TWO_MINUS_64_BITS, 'i32')}
  %special = icmp uge {integers} %shifted, {constant(_COMMON_SPAN, 'i32')}{any_special}
  br i1 {"%any_special" if lanes else "%special"}, label %careful, label %common
common:{newton("common_", "%x")}
  ret {kind} %common_root
careful:
  %zero = fcmp oeq {kind} %x, {constant('0.0')}
  %infinite = fcmp oeq {kind} %x, {constant(_INFINITY)}
  %as_is = or {flag} %zero, %infinite
  %small = fcmp olt {kind} %x, {constant(_TWO_MINUS_64)}
  %factor = select {flag} %small, {kind} {constant(_TWO_64)}, {kind} {constant('1.0')}
  %scaled = fmul {kind} %x, %factor
  %xs = select {flag} %as_is, {kind} {constant('1.0')}, {kind} %scaled{newton("", "%xs")}
  %unfactor = select {flag} %small, {kind} {constant(_TWO_MINUS_32)}, {kind} {constant('1.0')}
  %rescaled = fmul {kind} %root, %unfactor
  %result = select {flag} %as_is, {kind} %x, {kind} %rescaled
  ret {kind} %result"""


def _function(name: str, lanes: int | None, extra: str, estimate: str,
              attributes: str = "") -> str:
    """A definition taking (x, %emulate``extra``): √x exact when %emulate is false, else the
    emulation (``_body``). The test is on a scalar shared by all lanes, so a vector form
    branches once per call."""
    kind = _kind(lanes)
    sqrt = f"@llvm.sqrt.v{lanes}f32" if lanes else "@llvm.sqrt.f32"
    return f"""
define {kind} @{name}({kind} %x, i1 %emulate{extra}) {attributes} {{
  br i1 %emulate, label %emulated, label %exact
exact:
  %exact_root = call {kind} {sqrt}({kind} %x)
  ret {kind} %exact_root
emulated:{_body(lanes, estimate)}
}}"""


@functools.cache
def _module_text() -> str:
    if not available():  # the correctly rounded root, inlined and vectorised as np.sqrt is
        return f"""
declare float @llvm.sqrt.f32(float)
define float @{NAME}(float %x, i1 %emulate) alwaysinline {{
  %result = call float @llvm.sqrt.f32(float %x)
  ret float %result
}}"""
    # vector forms for 4, 8 and 16 lanes, each unmasked (N) and masked (M: called where the
    # element math branches, as Adam's root does on ε's placement; the mask can be ignored,
    # the function has no side effects); "v": x varies by lane, "u": the flag does not
    variants = ",".join(f"_ZGV_LLVM_{m}{n}vu_{NAME}({NAME}_{m}{n})"
                        for n, _, _ in _WIDTHS for m in "NM")
    scalar_estimate = ("{y}_in = insertelement <4 x float> zeroinitializer, float {x}, i32 0\n"
                       "  {y}_all = call <4 x float> @llvm.x86.avx512.rsqrt14.ss(<4 x float> "
                       "{y}_in, <4 x float> {y}_in, <4 x float> zeroinitializer, i8 -1)\n"
                       "  {y} = extractelement <4 x float> {y}_all, i32 0")
    # noinline: the loop vectoriser must still see the call to replace it by a vector form
    text = ["""
declare float @llvm.sqrt.f32(float)
declare float @llvm.fma.f32(float, float, float)
declare <4 x float> @llvm.x86.avx512.rsqrt14.ss(<4 x float>, <4 x float>, <4 x float>, i8)""",
            _function(NAME, None, "", scalar_estimate,
                      f'noinline "vector-function-abi-variant"="{variants}"')]
    for n, bits, mask in _WIDTHS:
        kind = _kind(n)
        estimate = (f"{{y}} = call {kind} @llvm.x86.avx512.rsqrt14.ps.{bits}({kind} {{x}}, "
                    f"{kind} zeroinitializer, {mask} -1)")
        text.append(f"""
declare {kind} @llvm.sqrt.v{n}f32({kind})
declare {kind} @llvm.fma.v{n}f32({kind}, {kind}, {kind})
declare {kind} @llvm.x86.avx512.rsqrt14.ps.{bits}({kind}, {kind}, {mask})
declare i1 @llvm.vector.reduce.or.v{n}i1(<{n} x i1>)""")
        text.append(_function(f"{NAME}_N{n}", n, "", estimate))
        text.append(_function(f"{NAME}_M{n}", n, f", <{n} x i1> %lanes", estimate))
    # the vector forms are called by no one until the vectoriser runs: keep them until then
    used = ", ".join(f"ptr @{NAME}_{m}{n}" for n, _, _ in _WIDTHS for m in "NM")
    text.append(f'@llvm.compiler.used = appending global [{2 * len(_WIDTHS)} x ptr] [{used}], '
                'section "llvm.metadata"')
    return "\n".join(text)


@functools.cache
def _library():
    library = cpu_target.target_context.codegen().create_library("descentlab_mkl_sqrt")
    module = llvm.parse_assembly(_module_text())
    module.verify()
    library.add_llvm_module(module)
    with global_compiler_lock:
        library.finalize()
    return library


@intrinsic
def _mkl_sqrt(typingctx, x, emulate):
    if x != types.float32 or not isinstance(emulate, types.Boolean):
        return None

    def codegen(context, builder, signature, args):
        context.active_code_library.add_linking_library(_library())
        kind = ir.FloatType()
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(kind, [kind, ir.IntType(1)]), NAME)
        return builder.call(function, args)

    return types.float32(x, emulate), codegen


@overload(square_root)
def _square_root_in_numba(x, h):
    if x == types.float32:
        # one call whatever the flag: a branch around it would keep the loop from vectorising
        return lambda x, h: _mkl_sqrt(x, h.torch_sqrt)
    if isinstance(x, types.Float):
        return lambda x, h: np.sqrt(x)
    return None


@functools.cache
def _ufunc():
    # built on first use, as _fma's: only the array-wise form with the flag on needs it
    @numba.vectorize(["float32(float32)"], cache=True)
    def mkl_sqrt_elements(x):
        return _mkl_sqrt(x, True)

    return mkl_sqrt_elements


def fingerprint() -> bytes:
    """What compiled code takes from this module (the IR, the overload), for cache keys."""
    return _module_text().encode() + marshal.dumps(_square_root_in_numba.__code__)


def mkl_sqrt(x: np.ndarray) -> np.ndarray:
    """The emulation of torch's float32 CPU sqrt on a float32 array (for probes and tests)."""
    return _ufunc()(np.asarray(x, np.float32))
