"""Machine-level pieces that descentlab.nn and descentlab.optim share: memory at raw addresses
(``addresses``), arrays aligned to cache lines (``aligned``) and the helper thread that runs
compiled jobs within a microsecond of being asked (``team``)."""
