"""Lambda runtime without Docker: execution environments as local worker processes.

- `specs`: snapshots of deployed function versions, and invocation results;
- `code_store`: code and layers extracted on disk;
- `environment`: one execution environment (a worker process running ``worker.py``);
- `pool`: warm environments per function version, reserved concurrency;
- `invoke`: function lookup and synchronous invocations; `async_invoke`: ``Event`` invocations.
"""

from pipeskit.local.runtime.environment import ExecutionEnvironment
from pipeskit.local.runtime.invoke import LambdaRuntime
from pipeskit.local.runtime.pool import EnvironmentPool
from pipeskit.local.runtime.specs import FunctionSpec, InvocationResult, LayerSpec

__all__ = [
    "EnvironmentPool",
    "ExecutionEnvironment",
    "FunctionSpec",
    "InvocationResult",
    "LambdaRuntime",
    "LayerSpec",
]
