"""Shared pytest configuration: the local AWS fixtures live with the emulator."""

pytest_plugins = ["local_aws.pytest_plugin"]
