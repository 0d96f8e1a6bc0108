"""Machine-level pieces that descentlab.nn and descentlab.optim share: memory at raw addresses
(``addresses``), arrays aligned to cache lines (``aligned``), the helper thread that runs
compiled jobs within a microsecond of being asked (``team``), the names of compiled code
kept distinct between processes (``variant_names``, ``numba_ids``), and the TBB library Numba
runs its threads on (``tbb_runtime``); the last two imported here so that they act before
anything of descentlab's is compiled or launched."""

from . import (
    numba_ids,  # noqa: F401  (re-seeds Numba's function counter on import)
    tbb_runtime,  # noqa: F401  (makes pip's TBB loadable before Numba looks for it)
)
