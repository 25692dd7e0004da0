"""The one thread a model computes in: loading, start-up checks, warm-up, cost measurement, every pass.

Why one: on a CPU torch spreads each operation over an OpenMP team owned by the thread that
started it, and a second thread running torch gets a second team. Once a process holds more
OpenMP threads than cores, libgomp stops spinning between operations and puts its threads to sleep
instead, in every team, for as long as both live. On the 2-core development machine that made a
one-text pass twice as slow (7 ms to 15 ms) and a 16-text pass 30% slower, measured with
`Embedder.forward` in one thread against the same after another thread had run the model once.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ModelThread:
    """A single worker thread; `call` and `run` hand it work, from any thread or from the event loop."""

    def __init__(self, name: str = "model") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ident = self._executor.submit(threading.get_ident).result()

    @property
    def executor(self) -> Executor:
        return self._executor

    def is_current(self) -> bool:
        return threading.get_ident() == self._ident

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` in this thread and returns its result (blocking); directly when already in it."""
        if self.is_current():
            return fn(*args, **kwargs)
        return self._executor.submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` in this thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Lets the thread end once its work is done."""
        self._executor.shutdown(wait=False)
