"""The pytest plugin's parts; ``harn_async_trace.pytest_plugin`` wires them into hooks.

* ``marker``: reading and checking ``@pytest.mark.mock_time(...)``;
* ``realtime``: making sure a ``mock_time`` test runs on the virtual loop or
  fails saying why (never on real time in silence);
* ``guard``: the determinism warnings (real sleeps in threads, wall-clock reads);
* ``report``: which trace goldens a run wrote, updated or left unused.
"""
