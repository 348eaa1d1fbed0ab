"""Start AWS's runtime interface client with Lambda's module search path.

Run inside an execution environment as ``python -I -S bootstrap.py MODULE.FUNCTION``: no site
packages of the interpreter, only what a managed Python runtime offers, in its order — the
function's code, its layers, the standard library, then the runtime's own packages (the runtime
interface client and the AWS SDK, next to this file). Standard library only.
"""

import os
import sys


def main() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    task = os.environ["LAMBDA_TASK_ROOT"]
    opt = os.environ.pop("_PIPESKIT_OPT_ROOT", "/opt")
    runtime = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [task, f"{opt}/python/lib/python{version}/site-packages", f"{opt}/python"]
    sys.path.append(runtime)
    os.chdir(task)
    from awslambdaric.__main__ import main as run_runtime_interface_client

    run_runtime_interface_client([sys.argv[0], sys.argv[1]])


if __name__ == "__main__":
    main()
