"""What the browser tests get back when they open a viewer page (not a test module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ("Opened",)


@dataclass
class Opened:
    """A viewer page in the browser, with what it logged and what it tried to fetch."""

    page: Any
    path: Path
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
