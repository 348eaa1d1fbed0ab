"""Names of the reference deployment, shared by its stack, its tests and its demo (no magic strings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeskit.stack_outputs import OutputNames

__all__ = [
    "CONTEXT_KEY", "EXAMPLE_FUNCTIONS", "LAMBDAS_DIR", "LAYER_REQUIREMENTS", "PROJECT_DIR", "STACK_NAME_PREFIX",
    "ExampleFunction", "OutputNames",
]  # fmt: skip

PROJECT_DIR = Path(__file__).resolve().parent.parent
"""The reference deployment's root (``cdk.json``); this module is not part of the library."""
LAMBDAS_DIR = PROJECT_DIR / "lambdas"
LAYER_REQUIREMENTS = PROJECT_DIR / "layers" / "requirements.txt"
"""What this deployment's pipes layer carries: dagster-pipes, and Powertools for the handlers."""

CONTEXT_KEY = "pipeskit"
"""Key of the settings object in ``cdk.json``'s ``context``."""

STACK_NAME_PREFIX = "pipeskit"


@dataclass(frozen=True)
class ExampleFunction:
    """One example function of ``lambdas/``.

    Attributes:
        construct_id: CDK id; also prefixes its ``CfnOutput`` names.
        name: suffix of the physical function name ``<stack>-<name>``.
        code_dir: directory under ``lambdas/`` holding the handler module.
        handler: ``module.function`` of the handler.
        queue_consumer: consumes the work queue through an SQS event source mapping.
    """

    construct_id: str
    name: str
    code_dir: str
    handler: str
    queue_consumer: bool = False


EXAMPLE_FUNCTIONS: tuple[ExampleFunction, ...] = (
    ExampleFunction(construct_id="Hello", name="hello", code_dir="hello", handler="handler.handler"),
    ExampleFunction(
        construct_id="DatasetSummary",
        name="dataset-summary",
        code_dir="dataset_summary",
        handler="handler.handler",
    ),
    ExampleFunction(
        construct_id="DocsStyle", name="docs-style", code_dir="docs_style", handler="handler.lambda_handler"
    ),
    ExampleFunction(
        construct_id="FanOutWorker",
        name="fan-out-worker",
        code_dir="fan_out_worker",
        handler="handler.handler",
        queue_consumer=True,
    ),
)
