"""Exporters: turn finished spans into text, dicts, files and foreign formats.

Exporters read finished ``Span`` records (or the event stream) only; they
never reach into a collector's internals.
"""

from __future__ import annotations

from .dicts import span_from_dict, span_to_dict
from .summary import format_summary

__all__ = ["format_summary", "span_from_dict", "span_to_dict"]
