"""The one place the orchestrator side reaches into private Dagster APIs, and why.

- ``TreatAsResourceParam`` marks a class that is not a ``ConfigurableResource`` as usable as a
  resource parameter of an ``@asset`` (``lambda_pipes: PipesLambdaClient``). Dagster exports no
  public name for it; dagster-aws's own ``PipesLambdaClient`` uses the same marker, and the kit's
  client must be accepted wherever that one is (a drop-in).
- ``build_external_execution_context_data`` builds the Pipes context of a step exactly as
  ``open_pipes_session`` does; a fan-out needs it once and then gives each item its own partition key,
  which ``open_pipes_session`` (one session per call) cannot.

``dagster`` is pinned to a minor series in ``pyproject.toml`` for these reasons.
"""

from typing import Any

from dagster._core.definitions.resource_annotation import TreatAsResourceParam
from dagster._core.pipes.context import build_external_execution_context_data

__all__ = ["TreatAsResourceParam", "build_context_data"]


def build_context_data(context: Any, extras: dict[str, Any]) -> dict[str, Any]:
    """The Pipes context data of the step, as ``open_pipes_session`` would inject it."""
    return dict(build_external_execution_context_data(context, extras))
