"""The one place the orchestrator side reaches into a private Dagster API, and why.

``TreatAsResourceParam`` marks a class that is not a ``ConfigurableResource`` as usable as a
resource parameter of an ``@asset`` (``lambda_pipes: PipesLambdaClient``). Dagster exports no public
name for it; dagster-aws's own ``PipesLambdaClient`` uses the same marker, and the kit's client must
be accepted wherever that one is (a drop-in). ``dagster`` is pinned to a minor series in
``pyproject.toml`` for this reason.
"""

from dagster._core.definitions.resource_annotation import TreatAsResourceParam

__all__ = ["TreatAsResourceParam"]
