"""A name of its own for each compiled variant of a function a factory makes.

Why: Numba names the machine code of a function after its module, its qualified name, its
argument types and a counter that starts anew in every process. A factory (one closure per
rule and set of state arrays, one per pool's wrapper) makes many functions with one qualified
name, so two variants compiled in two processes can end up with the same symbol and different
code. A third process that loads both from Numba's on-disk cache links every call to that
symbol to the variant it loaded first (numba/numba#10486). It happened here: with the torch
face's cache filled by one process per optimizer, a process stepping with Adagrad, Adam,
RMSprop and Adadelta ran another rule's code on RMSprop's arrays, 26.6 away from torch.optim
after three steps, without an error (``tests/test_variant_names.py`` makes such a case happen
on purpose).

:func:`variant_named` puts a digest of what a variant is made of into its qualified name before
Numba sees it: different variants then never share a symbol, and the same variant compiled
twice gets the same name, with the same code, so Numba's cache still finds it.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable
from types import CodeType

from numba.core.serialize import dumps

_MARK = "__variant_"


# marshal's format 2, the last without references: from format 3 on, an object is written once
# and referred to afterwards only if something else holds a reference to it too, so the bytes
# of one code object changed with what the process had done. A process that had compiled one
# kernel of a rule (Numba's bytecode analysis keeps the shared code's name and constant
# tuples) gave the next kernel of that rule another name than a process that had loaded the
# first from the cache, so Numba's cache missed and compiled it again (2 s).
_STABLE_FORMAT = 2


def code_bytes(code: CodeType) -> bytes:
    """``code`` as bytes that depend on the code alone, for digests and cache keys."""
    return marshal.dumps(code, _STABLE_FORMAT)


def variant_named(function: Callable, *extra: object) -> Callable:
    """``function`` itself, its ``__qualname__`` ending in a digest of its code, of the values
    it closes over (the parts of Numba's cache key that tell variants apart) and of
    ``extra``: whatever else decides its code and the first two do not show (the source of a
    module-level function it calls, which a closure records by name only).

    Call it on each factory-made function before it is compiled or registered with Numba, in
    the order they call one another (innermost first): an inner function's new name is then
    part of the closure of the functions that call it.
    """
    if _MARK in function.__qualname__:
        raise ValueError(f"{function.__qualname__} is already named for its variant")
    cells = tuple(_named(cell.cell_contents) for cell in function.__closure__ or ())
    digest = hashlib.sha256(code_bytes(function.__code__))
    digest.update(dumps(cells))
    digest.update(repr(extra).encode())
    function.__qualname__ = f"{function.__qualname__}{_MARK}{digest.hexdigest()[:20]}"
    return function


def _named(value: object) -> object:
    """A closure's value as the digest sees it: a function already named for its variant by
    its name, which digests all it is made of (pickling it again, with everything it closes
    over, took ~8 ms a function: most of a new optimizer's first step from the cache)."""
    qualname = getattr(value, "__qualname__", "")
    if callable(value) and _MARK in qualname:
        return ("variant", value.__module__, qualname)
    return value
