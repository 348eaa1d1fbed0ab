"""The one place the orchestrator side reaches into private Dagster APIs, and why.

- ``ConfigurableResourceFactory._with_updated_values`` is how Dagster makes the copy of a configured
  resource that a run uses (run config, launchpad): it rebuilds the resource from its config fields
  alone. The kit's client also holds objects that are not config (a boto3 client, a reader, as
  dagster-aws's constructor takes them); `KeepsObjectsAcrossConfig` hands them to the copy.
- ``build_external_execution_context_data`` builds the Pipes context of a step exactly as
  ``open_pipes_session`` does; a fan-out needs it once and then gives each item its own partition key,
  which ``open_pipes_session`` (one session per call) cannot.

``dagster`` is pinned to a minor series in ``pyproject.toml`` for these reasons.
"""

from typing import Any

from dagster._core.pipes.context import build_external_execution_context_data

__all__ = ["KeepsObjectsAcrossConfig", "build_context_data"]


class KeepsObjectsAcrossConfig:
    """Mixin of a ``ConfigurableResource`` holding objects besides its config fields.

    Dagster copies a resource for each run with the run's config (``_with_updated_values``); the
    copy gets the original's objects (`_kept_objects`) through `_keep_objects`.
    """

    def _kept_objects(self) -> dict[str, Any]:
        raise NotImplementedError

    def _keep_objects(self, objects: dict[str, Any]) -> None:
        raise NotImplementedError

    def _with_updated_values(self, values: Any) -> Any:
        copy = super()._with_updated_values(values)  # type: ignore[misc]
        copy._keep_objects(self._kept_objects())
        return copy


def build_context_data(context: Any, extras: dict[str, Any]) -> dict[str, Any]:
    """The Pipes context data of the step, as ``open_pipes_session`` would inject it."""
    return dict(build_external_execution_context_data(context, extras))
