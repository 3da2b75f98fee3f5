"""``python -m harn_async_trace.cli``: the same as the ``harn-trace`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
