"""Fixtures shared by the whole suite: the conformance kit's pytest plugin
(``flowcraft_conformance``), loaded here as users load it."""

pytest_plugins = ["flowcraft.testing.pytest_plugin"]
