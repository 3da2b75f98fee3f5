"""Every Python code block in README.md and docs/*.md runs as written.

A block is a fenced ```python (or ```py) block; each runs in a fresh module
namespace, in a temporary working directory, with the clean tracing state of
every test. A block that is deliberately not runnable (a fragment shown for
its shape) is fenced as ```text instead, so nothing here is skipped by a
marker that could hide a broken example.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class DocBlock:
    """One Python block of a Markdown file."""

    path: Path
    line: int
    source: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks() -> Iterator[DocBlock]:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            yield DocBlock(path, line, match.group(1))


BLOCKS = list(_blocks())


def test_the_docs_have_python_blocks() -> None:
    """The extractor finds blocks (a broken pattern would silently test nothing)."""
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_doc_block_runs(
    block: DocBlock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block runs without raising."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Line numbers in tracebacks point into the Markdown file.
    code = compile("\n" * (block.line - 1) + block.source, str(block.path), "exec")
    # A real module in sys.modules: dataclasses and pickling look it up there.
    module = types.ModuleType("__doc_example__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(code, module.__dict__)
