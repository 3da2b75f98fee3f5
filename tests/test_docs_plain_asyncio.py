"""docs/boundaries.md, "Plain asyncio": every Python block runs and prints the tree shown."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "boundaries.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _section() -> tuple[str, int]:
    """The section's text and the line it starts on."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Plain asyncio") + 1
    end = text.index("\n## ", start)
    return text[start:end], text[:start].count("\n") + 1


def _examples() -> list[tuple[int, str, str]]:
    """(line, code, expected output) per Python block; the output is the text blocks after it."""
    section, first_line = _section()
    examples: list[tuple[int, str, str]] = []
    for match in FENCE.finditer(section):
        language, body = match.group(1), match.group(2)
        if language == "python":
            line = first_line + section[: match.start()].count("\n") + 1
            examples.append((line, body, ""))
        elif language == "text" and examples:
            line, code, expected = examples[-1]
            examples[-1] = (line, code, expected + body)
    return examples


EXAMPLES = _examples()


def test_the_section_has_examples() -> None:
    """The section is found and shows code with the trees it gives."""
    assert len(EXAMPLES) >= 3
    assert sum(bool(expected) for _, _, expected in EXAMPLES) >= 2


@pytest.mark.parametrize(
    ("line", "code", "expected"), EXAMPLES, ids=[f"line {line}" for line, _, _ in EXAMPLES]
)
def test_block_runs_and_prints_what_the_doc_shows(line: int, code: str, expected: str) -> None:
    """A complete program: it runs as is and prints exactly the text blocks that follow it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{DOC}:{line}", "exec"), {"__name__": "__main__"})
    if expected:
        assert out.getvalue() == expected
