"""The root of every error pipes-lambda-kit raises, on both sides of a session.

It lives on the Lambda side, which stands alone (dagster-pipes and the standard library only), so the
errors raised inside a function and those raised by the orchestrator (``pipeskit.errors``) share one
root: ``except PipesKitError`` catches any of them.
"""

from __future__ import annotations

__all__ = ["HandlerConfigurationError", "PipesKitError", "SettingsError", "UnknownChannelError"]


class PipesKitError(Exception):
    """Root of the kit's errors. Each message says what happened, names the value or setting, and
    what to do."""


class SettingsError(PipesKitError, ValueError):
    """A setting has a value that cannot work; the message names it, the value and what is allowed."""


class HandlerConfigurationError(PipesKitError, RuntimeError):
    """``PIPESKIT_HANDLER`` is missing or does not name an importable function."""


class UnknownChannelError(PipesKitError, ValueError):
    """The Pipes bootstrap names no channel this side knows, or a channel name is registered twice."""
