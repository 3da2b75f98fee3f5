"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, the ``mock_time`` marker and trace snapshots arrive with the
pytest-plugin issue; until then the plugin registers nothing.
"""

from __future__ import annotations
