# The compiled core's Python surface; mirrors _pure.py, _pure_scoped.py, _pure_api.py.
from contextvars import ContextVar
from typing import Any

from ._pure import CoreCollector as CoreCollector
from ._pure import SpanHandle as SpanHandle
from ._pure_api import current_span_id as current_span_id
from ._pure_api import span_attach_metadata as span_attach_metadata
from ._pure_api import span_close as span_close
from ._pure_api import span_end as span_end
from ._pure_api import span_set_metadata as span_set_metadata
from ._pure_api import span_start as span_start
from ._pure_scoped import span as span

DISABLED: SpanHandle

def _configure(config: dict[str, Any], /) -> None: ...
def _set_current_var(var: ContextVar[Any], /) -> None: ...
