"""Build settings for the compiled core; everything else is in pyproject.toml.

The C extension ``harn_async_trace._core._ccore`` is optional: when it
cannot be built (no compiler, no Python headers, a free-threaded or
non-CPython interpreter) installation still succeeds, says so once, and
the package runs on its pure-Python core (``harn_async_trace.accelerated``
is then False).
"""

from __future__ import annotations

import glob
import platform
import sysconfig
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CoreNotBuiltWarning(UserWarning):
    """The compiled core was not built; the pure-Python core will be used."""


class OptionalBuildExt(build_ext):
    """``build_ext`` that falls back to the pure core instead of failing the install."""

    _reported = False

    def run(self) -> None:
        reason = _unsupported_reason()
        if reason:
            self._report(reason)
            return
        try:
            super().run()
        except Exception as exc:  # any build failure: the pure core serves
            self._report(f"{type(exc).__name__}: {exc}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._report(f"{type(exc).__name__}: {exc}")

    def _report(self, reason: str) -> None:
        if OptionalBuildExt._reported:
            return
        OptionalBuildExt._reported = True
        warnings.warn(
            "harn-async-trace: the compiled core was not built "
            f"({reason.strip().splitlines()[-1] if reason.strip() else reason}); "
            "installing with the pure-Python core",
            CoreNotBuiltWarning,
            stacklevel=1,
        )


def _unsupported_reason() -> str:
    if platform.python_implementation() != "CPython":
        return f"{platform.python_implementation()} is not CPython"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "free-threaded builds are not supported (the core assumes the GIL)"
    return ""


setup(
    ext_modules=[
        Extension(
            "harn_async_trace._core._ccore",
            sources=sorted(glob.glob("harn_async_trace/_core/*.c")),
            depends=["harn_async_trace/_core/_ccore.h"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
