"""vm_demo: an async bytecode VM for a subset of the Harn language.

Pipeline: `lexer` -> `parser` (`ast`) -> `compiler` -> `bytecode` -> `vm`
(dispatch loop) / `runtime` (modules, imports, pipelines), with builtins in
`builtins_core`, `builtins_methods`, `builtins_concurrency`,
`builtins_tracing` and `llm`. The VM emits `harn_async_trace` spans itself.
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
