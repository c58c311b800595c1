"""The time, for connectors, through the host.

Inside the sandbox these read the contract's ``sluice:plugin/clock`` import,
which answers only for a connector the pipeline grants the clock
(``grants: {clock: true}``); without the grant the call stops the pipeline
with an error naming the grant. ``time.time()`` does not reach the host's
clock in a component (componentize-py stubs WASI out), so use these::

    from sluice import clock

    started = clock.monotonic_ns()
    stamp = clock.now_ms()                 # ms since the Unix epoch (UTC)

Natively they read the machine's clock, or the time a test fixes with
:func:`sluice.testing.with_clock`.
"""

from __future__ import annotations

import time as _time
from typing import Callable

__all__ = ["monotonic_ns", "now_ms"]


def _machine_now_ms() -> int:
    return _time.time_ns() // 1_000_000


# Who answers: the host's import inside the sandbox (set by the build glue),
# a test's fixed clock under `sluice.testing.with_clock`, else the machine.
_now_ms: Callable[[], int] = _machine_now_ms
_monotonic_ns: Callable[[], int] = _time.monotonic_ns


def now_ms() -> int:
    """Wall-clock milliseconds since the Unix epoch (UTC)."""
    return int(_now_ms())


def monotonic_ns() -> int:
    """Monotonic nanoseconds since a fixed point; never decreases. Use it to
    measure intervals (a rate limit, a backoff)."""
    return int(_monotonic_ns())
