"""A handler that wraps the user's handler, for functions deployed by the kit.

The function's handler is ``pipeskit_lambda.entrypoint.handler`` (`protocol.ENTRYPOINT_HANDLER`) and
the environment variable ``PIPESKIT_HANDLER`` names the user's ``module.function``. Handlers written
exactly as in the Dagster docs (``open_dagster_pipes`` + ``PipesMappingParamsLoader``) then work
unmodified on warm environments and with every kit channel; handlers decorated with
``pipes_handler`` pass through.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from .errors import HandlerConfigurationError
from .protocol import HANDLER_ENV_VAR
from .session import Handler, run_invocation
from .settings import FunctionSettings


@cache
def user_handler() -> Handler:
    """Import the function named by ``PIPESKIT_HANDLER`` once per execution environment."""
    spec = FunctionSettings.current().handler
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise HandlerConfigurationError(
            f"{HANDLER_ENV_VAR}={spec!r} must name the user handler as module.function "
            "(e.g. handler.handler); set it in the function's environment"
        )
    module = importlib.import_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise HandlerConfigurationError(
            f"module {module_name!r} has no function {function_name!r} ({HANDLER_ENV_VAR}={spec!r})"
        ) from None


def handler(event: Any, context: Any) -> Any:
    """The Lambda entry point: run the user's handler as a Pipes session when asked."""
    return run_invocation(user_handler(), event, context)
