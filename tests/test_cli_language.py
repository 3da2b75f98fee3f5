"""`harn-trace run` finds its language by name; the runtime never imports the VM."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest

from harn_async_trace.cli import _language, _run, main
from harn_async_trace.cli._language import LanguageMissingError, load_language

PACKAGE = Path(__file__).resolve().parent.parent / "harn_async_trace"


def test_harn_is_registered() -> None:
    """The installed distribution registers the Harn VM as language `harn`."""
    language = load_language("harn")
    assert language.name == "harn"
    assert type(language).__module__ == "vm_demo.program"


def test_an_unknown_language_names_the_entry_point_group() -> None:
    """Asking for a language nobody installed says where languages come from."""
    with pytest.raises(LanguageMissingError, match=r"harn_async_trace\.languages"):
        load_language("cobol")


def test_run_without_a_language_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no language installed, `run` prints one line and exits 1 (no traceback)."""

    def missing(name: str = "harn") -> object:
        raise LanguageMissingError(f"no language {name!r} is installed")

    monkeypatch.setattr(_run, "load_language", missing)
    program = tmp_path / "p.harn"
    program.write_text('println("hi")\n')
    assert main(["run", str(program)]) == 1
    err = capsys.readouterr().err
    assert err == "error: no language 'harn' is installed\n"


def test_the_runtime_package_does_not_import_the_vm() -> None:
    """No module of harn_async_trace imports vm_demo (the VM stands above the runtime)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(name == "vm_demo" or name.startswith("vm_demo.") for name in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_a_program_error_is_printed_as_rendered(tmp_path: Path) -> None:
    """A syntax error comes back from the language already rendered: printed as is."""
    program = tmp_path / "bad.harn"
    program.write_text("let = 1\n")
    err = io.StringIO()
    language = load_language()
    assert _run._compile(language, program.read_text(), str(program), err) is None
    assert err.getvalue().startswith("error: ")
    assert f"{program}:1:" in err.getvalue()
    assert _language.ENTRY_POINT_GROUP == "harn_async_trace.languages"
