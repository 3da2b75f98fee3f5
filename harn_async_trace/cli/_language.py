"""The program runner behind ``harn-trace run``: a language plugged in, not imported.

``harn-trace run`` is generic: it loads a file, traces its run (Ctrl-C,
leftover tasks, live exports, outputs) and reports. What a program *is* comes
from a language registered under the entry-point group
``harn_async_trace.languages``; this distribution registers ``harn``
(``vm_demo``'s VM). So the tracing runtime never imports the VM that uses
it: the VM stands above the runtime, and the CLI finds it by name.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from typing import Final, Protocol, TextIO

__all__ = ("ENTRY_POINT_GROUP", "Language", "LanguageMissingError", "ProgramError", "load_language")

ENTRY_POINT_GROUP: Final = "harn_async_trace.languages"


class ProgramError(Exception):
    """A failure a language reports to its user; ``str()`` is the whole rendered text."""


class Language(Protocol):
    """What ``harn-trace run`` needs from a language."""

    name: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the language's own ``run`` options."""
        ...

    def compile(self, source: str, path: str) -> object:
        """Compile ``source`` (read from ``path``); raise ProgramError on a syntax error."""
        ...

    async def run(self, program: object, stdout: TextIO, args: argparse.Namespace) -> None:
        """Run a compiled program; raise ProgramError on a runtime error."""
        ...


class LanguageMissingError(RuntimeError):
    """No language of that name is installed."""


def load_language(name: str = "harn") -> Language:
    """The language registered as ``name`` (raises LanguageMissingError, naming the group).

    Example:
        >>> load_language("harn").name
        'harn'
    """
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name:
            language: Language = point.load()
            return language
    raise LanguageMissingError(
        f"no language {name!r} is installed (entry-point group {ENTRY_POINT_GROUP!r}); "
        "reinstall harn-async-trace"
    )
