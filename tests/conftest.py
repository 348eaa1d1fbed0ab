"""Shared pytest configuration: the local AWS fixtures live with the emulator."""

pytest_plugins = ["pipeskit.local.pytest_plugin"]
