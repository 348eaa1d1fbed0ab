"""Lambda runtime without Docker: AWS's runtime interface client in Lambda-shaped execution environments.

- `specs`: snapshots of deployed function versions, and invocation results;
- `code_store`: code and layers extracted on disk (``/var/task``, ``/opt``);
- `image`: the runtime's own packages (awslambdaric, boto3) and the runtime's Python;
- `sandbox`: isolation (bubblewrap), memory and freezing (cgroups);
- `runtime_api`: the Lambda Runtime API each environment's runtime talks to;
- `platform_log`: Lambda's platform lines in text or JSON;
- `environment`: one execution environment; `launcher`: how one is started;
- `pool`: warm environments per function version, init, reserved concurrency;
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
