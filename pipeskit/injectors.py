"""Context injectors: how the Pipes context reaches the function."""

from __future__ import annotations

from dagster import PipesEnvContextInjector


class LambdaEventContextInjector(PipesEnvContextInjector):
    """Put the context inline in the invoke event (``{**event, **bootstrap}``).

    Twin of ``dagster_pipes.PipesMappingParamsLoader(event)`` on the Lambda side.
    """

    def no_messages_debug_text(self) -> str:
        return "Injected the context inline in the Lambda invoke event."


PipesLambdaEventContextInjector = LambdaEventContextInjector
"""dagster-aws's name for the same injector."""
