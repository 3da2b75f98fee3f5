"""The package version, on the ground floor so that any layer can name it.

``pyproject.toml`` reads it from here (one place to change at a release).
"""

from __future__ import annotations

__all__ = ("__version__",)

__version__ = "0.1.0"
