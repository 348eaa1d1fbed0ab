"""AWS CDK constructs for Dagster Pipes on Lambda (the ``cdk`` extra: ``pip install 'pipes-lambda-kit[cdk]'``).

- `PipesLayer`: the pipes layer (``dagster-pipes`` + ``pipeskit_lambda``), built from PyPI without Docker;
- `PipesFunction`: a Python function with the layer, behind the kit's entrypoint, least-privilege role;
  durable (`DurableExecution`: executions of up to a year) or not;
- `SessionBuckets`: the context and messages buckets;
- `WorkQueue`: the SQS work queue and its dead-letter queue;
- `FailureQueue`: the on-failure destination queue of asynchronous runs;
- `OrchestratorPolicy`: the managed policy for the role that runs Dagster;
- `PipesDeployment`: all of the above wired around your functions, with the outputs the client reads.

`build_layer`, `export_layer`, `LayerBuildSettings` and `LayerBuildError` are re-exported from
`pipeskit.layer_build`, where they live: the layer build needs no CDK (``pipeskit layer``).
"""

from ..layer_build import LayerBuildError, LayerBuildSettings, build_layer, export_layer
from .failure_queue import FailureQueue
from .orchestrator_policy import OrchestratorPolicy
from .pipes_deployment import PipesDeployment, QueueConsumer
from .pipes_function import DurableExecution, PipesFunction
from .pipes_layer import LAMBDA_RUNTIME, PipesLayer
from .session_buckets import SessionBuckets
from .work_queue import WorkQueue

__all__ = [
    "DurableExecution",
    "FailureQueue",
    "LAMBDA_RUNTIME",
    "LayerBuildError",
    "LayerBuildSettings",
    "OrchestratorPolicy",
    "PipesDeployment",
    "PipesFunction",
    "PipesLayer",
    "QueueConsumer",
    "SessionBuckets",
    "WorkQueue",
    "build_layer",
    "export_layer",
]
