"""``step``'s wrapper: torch.optim's step hooks, and its profiler range only while a profiler runs.

torch.optim wraps the ``step`` of every optimizer class once (``Optimizer._patch_step_function``
installs ``Optimizer.profile_hook_step``): the wrapper runs the global and per-optimizer step
pre-hooks, the step, ``_optimizer_step_code`` (where torch's Python tracer looks) and the
post-hooks, all inside a ``torch.autograd.profiler.record_function`` range named
``Optimizer.step#<class>.step``. Opening and closing that range dispatches two operators
whether or not anything records them: 5-6 µs on warm caches, and about 33 µs right after a step
whose kernel streamed 20 MB through the caches (RMSprop at 2^20 elements, where the whole step
takes 0.30 ms; measured with a throw-away script, 2026-11-23).

:func:`hooked` does the same in the same order, and opens the range only while a profiler is
enabled (``torch.autograd._profiler_enabled()``, 0.04 µs): torch.profiler, the autograd
profiler and emit_itt/emit_nvtx all enable it, so their traces still show the step. (Observers
registered from C++ with ``at::addGlobalCallback`` alone no longer see the range.) Where no
hook is registered at all (the usual case) it calls the step and the entry point without the
loops over the four empty hook collections: on a host whose caches the step's kernel had
streamed, every Python call before and after it counts (BENCHMARKS.md, "Python around a step
from the cache").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from itertools import chain
from typing import Any

import torch
from torch.autograd.profiler import record_function
from torch.optim import optimizer as _torch_optimizer


def hooked(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` with torch.optim's step hooks around it, marked as torch marks the steps it has
    wrapped (``hooked``), so that torch leaves it alone."""

    @functools.wraps(step)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        self = args[0]
        if torch.autograd._profiler_enabled():
            with record_function(f"Optimizer.step#{type(self).__name__}.step"):
                return _with_hooks(step, args, kwargs)
        # no hook registered anywhere: the step and the profiler's entry point alone (the test
        # written out here, not in a function: each call counts, see the module's doc)
        if (_torch_optimizer._global_optimizer_pre_hooks or self._optimizer_step_pre_hooks
                or self._optimizer_step_post_hooks
                or _torch_optimizer._global_optimizer_post_hooks):
            return _with_hooks(step, args, kwargs)
        out = step(*args, **kwargs)
        self._optimizer_step_code()
        return out

    wrapper.hooked = True  # type: ignore[attr-defined]
    return wrapper


def _with_hooks(step: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """torch.optim's order: pre-hooks (which may replace the arguments), step, the profiler's
    entry point, post-hooks."""
    self = args[0]
    for pre_hook in chain(_torch_optimizer._global_optimizer_pre_hooks.values(),
                          self._optimizer_step_pre_hooks.values()):
        result = pre_hook(self, args, kwargs)
        if result is not None:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise RuntimeError(f"the step pre-hook {pre_hook!r} of {type(self).__name__} "
                                   f"returned {result!r}; a pre-hook returns None or a tuple "
                                   f"(new_args, new_kwargs)")
            args, kwargs = result
    out = step(*args, **kwargs)
    self._optimizer_step_code()
    for post_hook in chain(self._optimizer_step_post_hooks.values(),
                           _torch_optimizer._global_optimizer_post_hooks.values()):
        post_hook(self, args, kwargs)
    return out
