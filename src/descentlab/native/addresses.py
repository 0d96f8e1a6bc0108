"""Memory at a raw address, seen from compiled code as a pointer or a NumPy array.

Compiled code that another thread pool calls (torch's OpenMP team, descentlab's helper thread)
receives its arrays as integers: the data addresses the caller wrote into a table. These two
functions turn such an integer back into something Numba can index.
"""

from __future__ import annotations

from numba import carray, types
from numba.extending import intrinsic, register_jitable


@intrinsic
def address_as_pointer(typingctx, address, like):
    """``address`` (an int64) as a pointer to elements of ``like``'s dtype (Numba only)."""
    signature = types.CPointer(like.dtype)(address, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


@register_jitable(inline="always")
def array_at(address, count, like):
    """The ``count`` elements of ``like``'s dtype at ``address``, as a 1-d array (Numba only;
    no copy: the caller keeps the memory alive).

    A jitable function rather than a dispatcher: the fused kernels' cache keys pickle the
    functions they close over, with the globals those use, and a dispatcher pickles with an id
    drawn anew in every process (each process would compile again)."""
    return carray(address_as_pointer(address, like), count)
