"""The Python example runs and prints the same tree on every machine."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo_tasks.py"


def test_demo_tasks_prints_deterministic_tree(capsys: pytest.CaptureFixture[str]) -> None:
    """demo_tasks.py runs on virtual time: exact durations, concurrent fetches overlap."""
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert capsys.readouterr().out == (
        "['DOCS', 'WEB', 'DB']\n"
        "Trace: 5 spans, 195ms total\n"
        "\n"
        'pipeline agent 195ms (question="why is the sky blue?")\n'
        '  llm_call plan 120ms (model="mock-small")\n'
        '  tool_call fetch db 10ms (source="db")\n'
        '  tool_call fetch docs 40ms (source="docs")\n'
        '  tool_call fetch web 75ms (source="web")\n'
    )
