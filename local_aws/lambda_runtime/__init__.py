"""Lambda runtime without Docker: execution environments as local worker processes."""

from local_aws.lambda_runtime.environments import (
    EnvironmentPool,
    ExecutionEnvironment,
    FunctionSpec,
    InvocationResult,
    LayerSpec,
)
from local_aws.lambda_runtime.invoke import LambdaRuntime

__all__ = [
    "EnvironmentPool",
    "ExecutionEnvironment",
    "FunctionSpec",
    "InvocationResult",
    "LambdaRuntime",
    "LayerSpec",
]
