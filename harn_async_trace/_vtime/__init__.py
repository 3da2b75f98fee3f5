"""Internals of the virtual-time event loop; the public module is ``harn_async_trace.loop``.

* ``timers`` - ``TimerQueue``: timers ordered by (deadline, scheduling order);
* ``mixin`` - ``VirtualTimeMixin``: our own timers over any loop's public
  methods, the pump that fires due timers and autojumps;
* ``timeline`` - moving timers between real time and a mock clock;
* ``tasks`` - ``OrderedTask``, so asyncio's task sets iterate reproducibly;
* ``loops`` - the concrete loop classes (stock asyncio, uvloop), in-place
  virtualisation of a running stock loop, loop creation;
* ``session`` - what :func:`harn_async_trace.mock_time` does to loops, the
  event-loop policy hook and the time-machine wall clock;
* ``trio_bridge`` - anyio's trio backend on ``trio.testing.MockClock``.
"""

from __future__ import annotations

# Registers what mock_time() does to loops with the clock (which sits below us).
from . import session as session
