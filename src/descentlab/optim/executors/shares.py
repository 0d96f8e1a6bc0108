"""A part's step as a function other threads call by its address: ``share(arguments, first,
last)`` steps blocks ``first`` to ``last - 1`` of the part, with the rule's serial blocks loop
(``kernels.blocks_function_for``).

Three pools call it: torch's OpenMP team (descentlab.torch, ``torch.torch_threads``), and for
the NumPy face descentlab's helper thread (``native.team``) and Numba's pool (``launches``:
these two call one wrapper). Each wrapper is a ``numba.cfunc`` of its pool's signature
(:func:`compiled_wrapper`, kept by :func:`member_for`), and the only compiled form of the
element loop its pool runs.

``arguments`` is the address of :data:`ARGUMENTS` int64 (:class:`StepArguments`): the part's
pointer table and its row count, the blocks and their count, and the address of one record
holding the step's coefficients. The coefficients are copied from the record into the rule's
named tuple before the loop: read from memory inside it they would be reloaded at every
element (the compiler cannot tell they are not written through the arrays' pointers), and the
loop would not vectorise (a 2^25 SGD step took 46 ms that way against 12 ms).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.extending import register_jitable

from ...native.addresses import array_at
from ...native.variant_names import variant_named
from ..rules import Rule
from .kernels import COLUMNS, blocks_function_for, check_coefficients, constants

ARGUMENTS = 5  # pointers' address, members, blocks' address, blocks, the coefficients' address
_INT64 = np.zeros(1, np.int64)


class Member(NamedTuple):
    """What a pool calls for one kind of part: ``wrap(share)`` (see :func:`member_for`)."""

    function: Any  # the cfunc: kept, since it owns the machine code its address points to
    record: np.dtype  # the coefficients' layout it reads


def share_key(rule: Rule, part, h: NamedTuple) -> tuple:
    """What tells two shares apart: parts with the same key run the same compiled code."""
    return (rule.name, part.active, part.dtype, type(h), constants(rule, h))


_MEMBERS: dict[tuple, Member] = {}
_COMPILING = threading.Lock()


def member_for(rule: Rule, part, h: NamedTuple, wrap: Callable[[Callable], Any]) -> Member:
    """The pool's function for ``part``: ``wrap(share)``, a ``numba.cfunc`` of the pool's
    signature calling the jitable ``share(arguments, first, last)``. Compiled once per
    ``wrap`` and :func:`share_key` (or loaded from Numba's cache), and kept."""
    key = (wrap, *share_key(rule, part, h))
    found = _MEMBERS.get(key)
    if found is None:
        with _COMPILING:
            found = _MEMBERS.get(key)
            if found is None:
                share, record = _share_for(rule, part, h)
                found = _MEMBERS[key] = Member(wrap(share), record)
    return found


def compiled_wrapper(function: Callable, signature) -> Any:
    """A pool's wrapper of one share (the function a ``wrap`` defines around it), compiled as a
    cached ``numba.cfunc`` of the pool's ``signature``. Named for its share first
    (``native.variant_names``): every share's wrapper has one qualified name."""
    return numba.cfunc(signature, cache=True, nogil=True,
                       error_model="numpy")(variant_named(function))


def _share_for(rule: Rule, part, h: NamedTuple) -> tuple[Callable, np.dtype]:
    """The jitable share function for ``part``'s kind, and the coefficients' record."""
    check_coefficients(h)
    record = np.dtype([(name, np.bool_ if isinstance(value, bool) else part.dtype)
                       for name, value in zip(h._fields, h, strict=True)], align=True)
    kernel = blocks_function_for(rule, part.active, h)
    unpack = _unpacker(type(h))
    like, record_like = np.zeros(1, part.dtype), np.zeros(1, record)
    columns = COLUMNS

    def share(address, first, last):
        arguments = array_at(address, ARGUMENTS, _INT64)
        members, count = arguments[1], arguments[3]
        pointers = array_at(arguments[0], members * columns, _INT64).reshape((members, columns))
        blocks = array_at(arguments[2], count * 3, _INT64).reshape((count, 3))
        h = unpack(array_at(arguments[4], 1, record_like)[0])
        kernel(pointers, blocks, first, last, h, like)

    return register_jitable(variant_named(share)), record


class StepArguments:
    """What a share reads, at ``address``; kept with the part from call to call (each
    ``.ctypes.data`` costs ~1 µs, and a small model's whole step ~50 µs): only the
    coefficients are written again before a call, and not even they when the call brings the
    very coefficients object of the call before (descentlab.torch keeps a steady rule's)."""

    __slots__ = ("member", "function", "blocks", "coefficients", "arguments", "address", "h")

    def __init__(self, member: Member, part, blocks: np.ndarray) -> None:
        self.member = member  # what they were made for (compared by identity)
        self.function = member.function.address  # the cfunc's entry (a property of Numba's)
        self.blocks = blocks
        self.coefficients = np.zeros(1, member.record)  # one record of ``member.record``
        self.arguments = np.array([part.pointers.ctypes.data, len(part.pointers),
                                   blocks.ctypes.data, len(blocks),
                                   self.coefficients.ctypes.data], np.int64)
        self.address = self.arguments.ctypes.data
        self.h: NamedTuple | None = None  # the coefficients in the record

    @classmethod
    def kept(cls, name: str, rule: Rule, part, blocks: np.ndarray, h: NamedTuple,
             wrap: Callable[[Callable], Any]) -> StepArguments:
        """The arguments for stepping ``blocks`` of ``part`` with ``h`` on the pool whose
        ``wrap`` (see :func:`member_for`) makes its function: those kept in
        ``part.scratch[name]`` if they were made for that function and ``blocks``, else new
        ones; ``h`` written into their record (its float fields rounded to the part's dtype).

        The same ``h`` object as the last call's (alive, so no other object has its id) has
        the same type and flags, so the same function, and is in the record already: its
        lookup and writing, 3-5 µs of a step, are skipped.
        """
        found = part.scratch.get(name)
        if found is not None and found.h is h and found.blocks is blocks:
            return found
        member = member_for(rule, part, h, wrap)
        if found is None or found.member is not member or found.blocks is not blocks:
            found = part.scratch[name] = cls(member, part, blocks)
        found.coefficients[0] = h
        found.h = h
        return found


_UNPACKERS: dict[type, Callable] = {}


def _unpacker(coefficients: type) -> Callable:
    """A compiled function turning a record with ``coefficients``' fields into that named
    tuple (generated, as ``collections.namedtuple`` generates its methods: Numba cannot build a
    tuple from a record's fields in a loop)."""
    if coefficients not in _UNPACKERS:
        source = (f"def unpack(record):\n    return coefficients("
                  f"{', '.join(f'record.{name}' for name in coefficients._fields)})\n")
        namespace = {"coefficients": coefficients}
        exec(source, namespace)  # noqa: S102 - the source is built from field names only
        unpack = variant_named(namespace["unpack"], coefficients.__module__,
                               coefficients.__qualname__)
        _UNPACKERS[coefficients] = register_jitable(inline="always")(unpack)
    return _UNPACKERS[coefficients]
