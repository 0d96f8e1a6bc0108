"""``square_root(x, h)``: √x correctly rounded, or (``h.torch_sqrt``) as torch's CPU kernel
rounds it, so the torch face's fused kernels follow torch.optim's float32 trajectories exactly.

torch 2.13's CPU build takes ``Tensor.sqrt`` from MKL's vector math library
(``aten/src/ATen/cpu/vml.h``), which is not correctly rounded in float32. MKL runs one of
several kernels for it, chosen by the processor, and this module emulates the two met on this
project's machines (:func:`algorithm` says which one the host gets):

``"avx512"``, MKL's kernel for Intel processors with AVX-512. It returns one unit in the last
place less for about 0.6 % of inputs (98,955 of the 2^24 floats in [1, 4)). Bit for bit, its
result is one Newton step from the processor's 14-bit reciprocal root estimate
(``vrsqrt14ps``)::

    y = rsqrt14(x);  s = x·y;  r = fma(−s, s, x);  √x ≈ fma(r, y/2, s)

with 0 and +∞ returned as they are, and inputs below 2^-64 scaled by 2^64 first (the result
then by 2^-32: exact, and it keeps ``r`` from underflowing; MKL's results there are the same
algorithm's on the scaled input). Without a fused multiply-add, ``s + r·y/2`` differs in 122
of those inputs.

``"sse"``, the kernel MKL runs on other processors (``mkl_vml_kernel_sSqrt_EXHAynn``, seen in
a debugger on an AMD EPYC). It is one unit off either way for 17 % of inputs (2,876,932 of the
floats in [1, 4)). Bit for bit, it is a Goldschmidt step from SSE's 12-bit estimate
(``rsqrtps``, whose table is the processor's own), each operation rounded, no fused
multiply-add::

    y = rsqrt(x);  s = x·y;  h = y·½;  e = ½ − s·h;  s ← s + s·e;  h ← h + h·e
    √x ≈ s + (x − s·s)·h

for the normal floats up to 0x7F7FF000 (its bits); zero, subnormals, negatives, the floats
above and NaN get the correctly rounded root.

``tests/test_torch_sqrt.py`` compares the host's emulation with torch.sqrt on every float32 of
several ranges (each emulation was checked so on its own processor, and the sse one once on all
2^32 float32 bit patterns).

Each model step feeds one-unit differences back, and a 50-step trajectory of a small CNN then
drifts up to 9e-4 from torch.optim's, far beyond the face's float32 target of 1e-6.

The estimates are x86 instructions with no portable equivalent, so the emulation is written in
LLVM IR (below) and reaches Numba's element math as a function whose vector forms LLVM's loop
vectoriser knows (the ``vector-function-abi-variant`` attribute): the fused loop stays
vectorised (on 4, 8 or 16 floats) and only its remainder calls the scalar form. Where no
emulation applies (another processor, or Numba compiling for another CPU than this one) the
function is the correctly rounded root, and the torch face does not turn the flag on: its
probe compares this function with torch's sqrt before it trusts it (``descentlab.torch.roots``),
so a wrong guess of MKL's kernel costs exactness, never correctness.

float64 is left correctly rounded: torch's float64 root is another MKL algorithm, and the
face's float64 target (1e-12) is met with correct rounding (≤ 2.8e-15 on the test models).
"""

from __future__ import annotations

import functools

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import cpu_target
from numba.extending import intrinsic, overload

from ...native.variant_names import code_bytes

NAME = "descentlab_mkl_sqrt_f32"
_MASKS = {4: "i8", 8: "i8", 16: "i16"}  # the AVX-512 mask type of each vector width


def square_root(x, h):
    """√x for NumPy arrays and scalars: as torch's CPU kernel computes it where
    ``h.torch_sqrt`` is true and ``x`` is float32, otherwise correctly rounded (``np.sqrt``).
    """
    if h.torch_sqrt and np.asarray(x).dtype == np.float32:
        return _ufunc()(x)
    return np.sqrt(x)


# LLVM's names for AMD's processors, for a host whose vendor Linux does not tell
_AMD_CPU_NAMES = ("znver", "bdver", "btver", "amdfam", "barcelona", "athlon", "opteron", "k8")


def _vendor() -> str | None:
    """The processor's vendor string (``GenuineIntel``, ``AuthenticAMD``), where Linux says;
    else ``AuthenticAMD`` where LLVM names an AMD processor, else None."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return "AuthenticAMD" if llvm.get_host_cpu_name().startswith(_AMD_CPU_NAMES) else None


@functools.cache
def algorithm() -> str | None:
    """Which of MKL's float32 roots the emulation reproduces on this host: ``"sse"`` on an x86
    processor that is not Intel's (MKL runs its generic kernel there), ``"avx512"`` on one
    with AVX-512 otherwise (an Intel processor, or one whose vendor is unknown), None where
    neither applies or Numba compiles for another CPU than this one (:func:`square_root` is
    then the correctly rounded root in both modes)."""
    features = llvm.get_host_cpu_features()
    if numba.config.CPU_NAME is not None or not features.get("sse"):
        return None
    vendor = _vendor()
    if vendor is not None and vendor != "GenuineIntel":
        return "sse"
    return "avx512" if features.get("avx512f") else None


def available() -> bool:
    """Whether an emulation is compiled in (:func:`algorithm` names one)."""
    return algorithm() is not None


# -- the LLVM IR ----------------------------------------------------------------------------
# Float constants are written as the doubles LLVM's IR syntax asks for; all are exact floats.
_TWO_64, _TWO_MINUS_64, _TWO_MINUS_32 = "0x43F0000000000000", "0x3BF0000000000000", \
    "0x3DF0000000000000"
_HALF, _INFINITY = "0x3FE0000000000000", "0x7FF0000000000000"
# float32 bit patterns, as integers: the avx512 kernel's common inputs run from 2^-64 up to
# +inf, the sse kernel's from the smallest normal float up to 0x7F7FF000 (both ends included)
_AVX512_FIRST, _AVX512_SPAN = str(0x1F800000), str(0x7F800000 - 0x1F800000)
_SSE_FIRST, _SSE_SPAN = str(0x00800000), str(0x7F7FF000 - 0x00800000 + 1)


def _kind(lanes: int | None) -> str:
    """The LLVM type of ``lanes`` floats (``float`` for None: the scalar form)."""
    return f"<{lanes} x float>" if lanes else "float"


class _Writer:
    """IR text pieces for ``lanes`` floats (None: one)."""

    def __init__(self, lanes: int | None):
        self.lanes, self.kind = lanes, _kind(lanes)
        self.flag = f"<{lanes} x i1>" if lanes else "i1"
        self.integers = f"<{lanes} x i32>" if lanes else "i32"
        self.fma = f"@llvm.fma.v{lanes}f32" if lanes else "@llvm.fma.f32"
        self.sqrt = f"@llvm.sqrt.v{lanes}f32" if lanes else "@llvm.sqrt.f32"

    def constant(self, value: str, of: str = "float") -> str:
        return f"<{', '.join([f'{of} {value}'] * self.lanes)}>" if self.lanes else value

    def test(self, first: str, span: str) -> str:
        """``%special``: the lanes outside [first, first + span) as unsigned bits (zero,
        negatives and NaN land outside whenever first > 0), and the branch on whether any
        lane is special."""
        any_special = (f"\n  %any_special = call i1 @llvm.vector.reduce.or.v{self.lanes}i1("
                       f"{self.flag} %special)" if self.lanes else "")
        return f"""
  %bits = bitcast {self.kind} %x to {self.integers}
  %shifted = sub {self.integers} %bits, {self.constant(first, 'i32')}
  %special = icmp uge {self.integers} %shifted, {self.constant(span, 'i32')}{any_special}
  br i1 {"%any_special" if self.lanes else "%special"}, label %careful, label %common"""


def _avx512_body(lanes: int | None, estimate: str) -> str:
    """The avx512 kernel on ``lanes`` floats (None: one); ``estimate`` is the call that puts
    rsqrt14(``x``) in ``%y`` (its ``x`` written as ``{x}``, a placeholder).

    Where every lane holds a normal float of at least 2^-64 (nearly always) it runs the Newton
    step alone; otherwise the ``careful`` block handles each lane's case: 0 and +∞ are returned
    as they are and replaced by 1 inside (rsqrt14 gives ∞ and 0 there, and 0·∞ would raise the
    invalid-operation flag that NumPy reports as a warning); the scale factors are selected
    before they multiply, so no lane overflows either. For a lane of the common kind both
    blocks compute the same operations, so the result does not depend on its neighbours.
    """
    w = _Writer(lanes)
    kind, constant = w.kind, w.constant

    def newton(prefix: str, x: str) -> str:
        return f"""
  {estimate.format(y=f"%{prefix}y", x=x)}
  %{prefix}s = fmul {kind} {x}, %{prefix}y
  %{prefix}h = fmul {kind} %{prefix}y, {constant(_HALF)}
  %{prefix}minus_s = fneg {kind} %{prefix}s
  %{prefix}r = call {kind} {w.fma}({kind} %{prefix}minus_s, {kind} %{prefix}s, {kind} {x})
  %{prefix}root = call {kind} {w.fma}({kind} %{prefix}r, {kind} %{prefix}h, {kind} %{prefix}s)"""

    return f"""{w.test(_AVX512_FIRST, _AVX512_SPAN)}
common:{newton("common_", "%x")}
  ret {kind} %common_root
careful:
  %zero = fcmp oeq {kind} %x, {constant('0.0')}
  %infinite = fcmp oeq {kind} %x, {constant(_INFINITY)}
  %as_is = or {w.flag} %zero, %infinite
  %small = fcmp olt {kind} %x, {constant(_TWO_MINUS_64)}
  %factor = select {w.flag} %small, {kind} {constant(_TWO_64)}, {kind} {constant('1.0')}
  %scaled = fmul {kind} %x, %factor
  %xs = select {w.flag} %as_is, {kind} {constant('1.0')}, {kind} %scaled{newton("", "%xs")}
  %unfactor = select {w.flag} %small, {kind} {constant(_TWO_MINUS_32)}, {kind} {constant('1.0')}
  %rescaled = fmul {kind} %root, %unfactor
  %result = select {w.flag} %as_is, {kind} %x, {kind} %rescaled
  ret {kind} %result"""


def _sse_body(lanes: int | None, estimate: str) -> str:
    """The sse kernel on ``lanes`` floats (None: one); ``estimate`` as for ``_avx512_body``,
    rsqrt(``x``) this time.

    Where every lane is common it runs the Goldschmidt step alone; otherwise the ``careful``
    block takes the correctly rounded root for the special lanes and the step, on 1 in their
    place (rsqrt(0) is ∞, and ∞·0 would raise the invalid-operation flag), for the others:
    the same operations as the common block, so no lane depends on its neighbours. Every
    operation is a separate instruction without fast-math flags, so LLVM does not fuse a
    multiplication and an addition: MKL's kernel rounds each.
    """
    w = _Writer(lanes)
    kind, half = w.kind, w.constant(_HALF)

    def goldschmidt(p: str, x: str) -> str:
        return f"""
  {estimate.format(y=f"%{p}y", x=x)}
  %{p}s = fmul {kind} {x}, %{p}y
  %{p}h = fmul {kind} %{p}y, {half}
  %{p}sh = fmul {kind} %{p}s, %{p}h
  %{p}e = fsub {kind} {half}, %{p}sh
  %{p}se = fmul {kind} %{p}s, %{p}e
  %{p}s1 = fadd {kind} %{p}se, %{p}s
  %{p}he = fmul {kind} %{p}h, %{p}e
  %{p}h1 = fadd {kind} %{p}he, %{p}h
  %{p}ss = fmul {kind} %{p}s1, %{p}s1
  %{p}d = fsub {kind} {x}, %{p}ss
  %{p}dh = fmul {kind} %{p}d, %{p}h1
  %{p}root = fadd {kind} %{p}dh, %{p}s1"""

    return f"""{w.test(_SSE_FIRST, _SSE_SPAN)}
common:{goldschmidt("common_", "%x")}
  ret {kind} %common_root
careful:
  %correct = call {kind} {w.sqrt}({kind} %x)
  %xs = select {w.flag} %special, {kind} {w.constant('1.0')}, {kind} %x{goldschmidt("", "%xs")}
  %result = select {w.flag} %special, {kind} %correct, {kind} %root
  ret {kind} %result"""


def _function(name: str, lanes: int | None, extra: str, body: str,
              attributes: str = "") -> str:
    """A definition taking (x, %emulate``extra``): √x exact when %emulate is false, else the
    emulation ``body``. The test is on a scalar shared by all lanes, so a vector form
    branches once per call."""
    kind = _kind(lanes)
    return f"""
define {kind} @{name}({kind} %x, i1 %emulate{extra}) {attributes} {{
  br i1 %emulate, label %emulated, label %exact
exact:
  %exact_root = call {kind} {_Writer(lanes).sqrt}({kind} %x)
  ret {kind} %exact_root
emulated:{body}
}}"""


def _scalar_estimate(call: str) -> str:
    """An estimate on one float through the packed-scalar instruction ``call`` (applied to a
    ``<4 x float>`` named ``{y}_in``, whose lane 0 holds ``{x}``)."""
    return ("{y}_in = insertelement <4 x float> zeroinitializer, float {x}, i32 0\n"
            f"  {{y}}_all = call <4 x float> {call}\n"
            "  {y} = extractelement <4 x float> {y}_all, i32 0")


def _avx512_estimates() -> tuple[str, str, dict[int, str]]:
    """The rsqrt14 estimate: its declarations, scalar form and vector forms by width."""
    declarations = ["declare <4 x float> @llvm.x86.avx512.rsqrt14.ss(<4 x float>, <4 x float>, "
                    "<4 x float>, i8)"]
    vectors = {}
    for n, mask in _MASKS.items():
        kind, bits = _kind(n), 32 * n
        declarations.append(f"declare {kind} @llvm.x86.avx512.rsqrt14.ps.{bits}({kind}, {kind}, "
                            f"{mask})")
        vectors[n] = (f"{{y}} = call {kind} @llvm.x86.avx512.rsqrt14.ps.{bits}({kind} {{x}}, "
                      f"{kind} zeroinitializer, {mask} -1)")
    scalar = _scalar_estimate("@llvm.x86.avx512.rsqrt14.ss(<4 x float> {y}_in, <4 x float> "
                              "{y}_in, <4 x float> zeroinitializer, i8 -1)")
    return "\n".join(declarations), scalar, vectors


def _sse_estimates() -> tuple[str, str, dict[int, str]]:
    """The rsqrt estimate, as ``_avx512_estimates``: 4 lanes always, 8 with AVX, 16 (two
    halves of 8) with AVX-512, the widths the vectoriser may choose on this host."""
    declarations = ["declare <4 x float> @llvm.x86.sse.rsqrt.ss(<4 x float>)",
                    "declare <4 x float> @llvm.x86.sse.rsqrt.ps(<4 x float>)"]
    vectors = {4: "{y} = call <4 x float> @llvm.x86.sse.rsqrt.ps(<4 x float> {x})"}
    features = llvm.get_host_cpu_features()
    if features.get("avx"):
        declarations.append("declare <8 x float> @llvm.x86.avx.rsqrt.ps.256(<8 x float>)")
        vectors[8] = "{y} = call <8 x float> @llvm.x86.avx.rsqrt.ps.256(<8 x float> {x})"
        if features.get("avx512f"):
            low, high = (", ".join(f"i32 {i}" for i in range(k, k + 8)) for k in (0, 8))
            every = ", ".join(f"i32 {i}" for i in range(16))
            vectors[16] = (
                f"{{y}}_low = shufflevector <16 x float> {{x}}, <16 x float> poison, "
                f"<8 x i32> <{low}>\n"
                f"  {{y}}_high = shufflevector <16 x float> {{x}}, <16 x float> poison, "
                f"<8 x i32> <{high}>\n"
                "  {y}_low_estimate = call <8 x float> @llvm.x86.avx.rsqrt.ps.256(<8 x float> "
                "{y}_low)\n"
                "  {y}_high_estimate = call <8 x float> @llvm.x86.avx.rsqrt.ps.256(<8 x float> "
                "{y}_high)\n"
                "  {y} = shufflevector <8 x float> {y}_low_estimate, <8 x float> "
                f"{{y}}_high_estimate, <16 x i32> <{every}>")
    scalar = _scalar_estimate("@llvm.x86.sse.rsqrt.ss(<4 x float> {y}_in)")
    return "\n".join(declarations), scalar, vectors


_ALGORITHMS = {"avx512": (_avx512_estimates, _avx512_body), "sse": (_sse_estimates, _sse_body)}


@functools.cache
def _module_text() -> str:
    if not available():  # the correctly rounded root, inlined and vectorised as np.sqrt is
        return f"""
declare float @llvm.sqrt.f32(float)
define float @{NAME}(float %x, i1 %emulate) alwaysinline {{
  %result = call float @llvm.sqrt.f32(float %x)
  ret float %result
}}"""
    estimates, body = _ALGORITHMS[algorithm()]
    declarations, scalar_estimate, vector_estimates = estimates()
    widths = sorted(vector_estimates)
    # vector forms for each width, unmasked (N) and masked (M: called where the element math
    # branches, as Adam's root does on ε's placement; the mask can be ignored, the function
    # has no side effects); "v": x varies by lane, "u": the flag does not
    variants = ",".join(f"_ZGV_LLVM_{m}{n}vu_{NAME}({NAME}_{m}{n})" for n in widths for m in "NM")
    # noinline: the loop vectoriser must still see the call to replace it by a vector form
    text = ["""
declare float @llvm.sqrt.f32(float)
declare float @llvm.fma.f32(float, float, float)""", declarations,
            _function(NAME, None, "", body(None, scalar_estimate),
                      f'noinline "vector-function-abi-variant"="{variants}"')]
    for n in widths:
        kind = _kind(n)
        text.append(f"""
declare {kind} @llvm.sqrt.v{n}f32({kind})
declare {kind} @llvm.fma.v{n}f32({kind}, {kind}, {kind})
declare i1 @llvm.vector.reduce.or.v{n}i1(<{n} x i1>)""")
        text.append(_function(f"{NAME}_N{n}", n, "", body(n, vector_estimates[n])))
        text.append(_function(f"{NAME}_M{n}", n, f", <{n} x i1> %lanes",
                              body(n, vector_estimates[n])))
    # the vector forms are called by no one until the vectoriser runs: keep them until then
    used = ", ".join(f"ptr @{NAME}_{m}{n}" for n in widths for m in "NM")
    text.append(f'@llvm.compiler.used = appending global [{2 * len(widths)} x ptr] [{used}], '
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
    return _module_text().encode() + code_bytes(_square_root_in_numba.__code__)


def mkl_sqrt(x: np.ndarray) -> np.ndarray:
    """The emulation of torch's float32 CPU sqrt on a float32 array (for probes and tests)."""
    return _ufunc()(np.asarray(x, np.float32))
