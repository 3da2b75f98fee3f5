"""Helpers for the pytest-plugin tests: each runs a small test project with pytester.

The same modules run under ``make test`` (the newest pytest-asyncio) and under
``make test-plugin-matrix`` (the lowest supported one, and one too old), so
what depends on the installed pytest-asyncio is decided here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.version import Version

from harn_async_trace._plugin.realtime import MIN_PYTEST_ASYNCIO


def _installed(distribution: str) -> Version | None:
    try:
        return Version(version(distribution))
    except PackageNotFoundError:
        return None


PYTEST_ASYNCIO = _installed("pytest-asyncio")
SUPPORTED = PYTEST_ASYNCIO is not None and PYTEST_ASYNCIO >= Version(MIN_PYTEST_ASYNCIO)

needs_supported_pytest_asyncio = pytest.mark.skipif(
    not SUPPORTED,
    reason=f"needs pytest-asyncio >= {MIN_PYTEST_ASYNCIO} (installed: {PYTEST_ASYNCIO})",
)
needs_old_pytest_asyncio = pytest.mark.skipif(
    SUPPORTED or PYTEST_ASYNCIO is None,
    reason="runs where pytest-asyncio is older than supported (make test-plugin-matrix)",
)
needs_syrupy = pytest.mark.skipif(
    _installed("syrupy") is None, reason="needs syrupy (make test-plugin-matrix installs it)"
)

# Plugins that only slow the inner runs down (hypothesis costs ~1 s a session).
_INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
addopts = -p no:hypothesispytest -p no:looptime_plugin -p no:cacheprovider
"""


# The conftest.py that puts anyio's pytest plugin on the test's virtual loop.
VIRTUAL_ANYIO_CONFTEST = """
import pytest

@pytest.fixture
def anyio_backend(virtual_anyio_backend):
    return virtual_anyio_backend
"""


def write_ini(pytester: pytest.Pytester, extra: str = "") -> None:
    """The inner project's pytest.ini: this project's pytest-asyncio settings plus ``extra``."""
    pytester.makeini(_INI + extra)
