"""Registers the integration fixtures (control plane, operator, partners) once, for every suite.

A plugin, not a conftest import: fixtures imported into a second conftest are a second definition,
and a second session-scoped `operator` would run beside the first.
"""

pytest_plugins = ["tests.integration.fixtures"]
