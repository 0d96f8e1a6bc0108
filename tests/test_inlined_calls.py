"""``native.inlined_calls.call_inlined``: the call it makes is inlined by LLVM even where LLVM
would keep a call, and it returns what the plain call returns (why it exists: the module's doc
and BENCHMARKS.md, "Kernels slow for a whole process")."""

from __future__ import annotations

import re

import numba
import numpy as np
from numba.extending import register_jitable

from descentlab.native.inlined_calls import call_inlined

# Six loops of branches and transcendental functions, written out (generated, as the loops
# must be separate code, not one loop over six scales that LLVM folds): enough code that LLVM's
# inliner keeps a plain call to the function.
_PASS = """
    for i in range(x.size):
        v = x[i] * {scale}
        if v > 0.5:
            v = np.sqrt(v) * 1.5 + np.exp(v) - np.log1p(v) / (v + 2.0)
        elif v < -0.5:
            v = np.sin(v) * np.cos(v) + np.tanh(v) * 3.0 - np.arctan(v)
        else:
            v = v * v * v - 2.0 * v + np.cosh(v) / (1.0 + np.sinh(v) ** 2)
        out[i] += v + np.expm1(v) * 0.25 - np.log(abs(v) + 1.0)
"""
_SOURCE = ("def _large(x, out):\n"
           + "".join(_PASS.format(scale=1.0 + k / 10) for k in range(6))
           + "    return out.sum()\n")
_namespace: dict = {"np": np}
exec(_SOURCE, _namespace)  # noqa: S102 - the source is the constant text above
_large = register_jitable(_namespace["_large"])


@numba.njit
def _plain(x, out):
    return _large(x, out)


@numba.njit
def _marked(x, out):
    return call_inlined(_large, (x, out))


def _calls_to_large(dispatcher) -> int:
    text = dispatcher.inspect_llvm(dispatcher.signatures[0])
    return len(re.findall(r"\bcall\b[^\n]*_large", text))


def test_the_marked_call_returns_what_the_plain_call_returns():
    x = np.linspace(-1.0, 1.0, 101)
    plain, marked = np.zeros_like(x), np.zeros_like(x)
    assert _marked(x, marked) == _plain(x, plain)
    np.testing.assert_array_equal(marked, plain)
    assert np.count_nonzero(plain) > 90


def test_llvm_inlines_the_marked_call_where_it_keeps_the_plain_one():
    x = np.linspace(-1.0, 1.0, 11)
    _plain(x, np.zeros_like(x))
    _marked(x, np.zeros_like(x))
    assert _calls_to_large(_plain) >= 1  # else this function is too small to tell
    assert _calls_to_large(_marked) == 0
