"""Machine-level pieces that descentlab.nn and descentlab.optim share: memory at raw addresses
(``addresses``), arrays aligned to cache lines (``aligned``), the helper thread that runs
compiled jobs within a microsecond of being asked (``team``), and the names of compiled code
kept distinct between processes (``variant_names``, ``numba_ids``, imported here so that it
acts before anything of descentlab's is compiled)."""

from . import numba_ids  # noqa: F401  (re-seeds Numba's function counter on import)
