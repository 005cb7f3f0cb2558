"""Where the ``dolmen_runtime`` fixture used to live; kept for ``conftest.py`` files that
name it in ``pytest_plugins``. pytest now loads ``dolmen.pytest_plugin`` by itself."""

from dolmen.pytest_plugin import dolmen_runtime

__all__ = ["dolmen_runtime"]
