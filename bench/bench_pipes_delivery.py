"""Messages delivered and AWS calls per session: this kit's client against dagster-aws's.

One function (a Dagster-docs-style handler, no kit code) emits 1,000 custom messages interleaved
with 2 MB of ordinary log lines, on the local AWS. Each client runs it as a Dagster asset; the
figures are messages delivered out of messages sent, AWS API calls per session, and wall time.
"""


import contextlib
import io
import statistics
import time
import warnings
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, ResourceParam, asset, materialize
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient

from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import CloudWatchLogsMessageReader, PipesLambdaClient, ResponsePayloadMessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

NOISY_HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "noisy.py"
MESSAGES = 1000
NOISE_BYTES = 2_000_000
REPEATS = 3
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def run_session(client: Any, function_name: str) -> tuple[int, bool]:
    """Materialize one asset through ``client``; returns (messages delivered, run succeeded)."""
    delivered: list[int] = []

    @asset
    def noisy(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        completed = lambda_pipes.run(
            context=context, function_name=function_name, event={"messages": MESSAGES, "noise_bytes": NOISE_BYTES}
        )
        delivered.append(len(completed.get_custom_messages()))
        yield from completed.get_results()

    with contextlib.redirect_stdout(io.StringIO()):  # dagster-aws echoes the log tail to stdout
        result = materialize([noisy], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                             raise_on_error=False, run_config=QUIET)
    return (delivered[0] if delivered else 0), result.success


def main() -> None:
    warnings.filterwarnings("ignore")
    with LocalAWS(port=0, quiet=True) as aws:
        lam = aws.client("lambda", retries=0, read_timeout=300)
        function = deploy_pipes_function(
            lam, code=NOISY_HANDLER, user_handler="noisy.lambda_handler",
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip

        def kit(reader: Any) -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            lambda_client = counter.attach(aws.client("lambda", retries=0, read_timeout=300))
            message_reader = reader(logs_client=counter.attach(aws.client("logs")), lambda_client=lambda_client)
            return PipesLambdaClient(client=lambda_client, message_reader=message_reader), counter

        def peer() -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            return PeerPipesLambdaClient(client=counter.attach(aws.client("lambda", read_timeout=300))), counter

        contenders = {
            "pipes-lambda-kit, response payload": lambda: kit(ResponsePayloadMessageReader),
            "pipes-lambda-kit, CloudWatch Logs": lambda: kit(CloudWatchLogsMessageReader),
            "dagster-aws PipesLambdaClient": peer,
        }
        run_session(contenders["dagster-aws PipesLambdaClient"]()[0], function)  # warm the environment
        print(f"{MESSAGES} custom messages + {NOISE_BYTES / 1e6:.0f} MB of log lines per session, "
              f"median of {REPEATS} sessions\n")
        print(f"{'client':<38}{'delivered':>12}{'run ok':>8}{'AWS calls':>11}{'wall (s)':>10}")
        for name, make in contenders.items():
            delivered, ok, calls, walls = [], [], [], []
            for _ in range(REPEATS):
                client, counter = make()
                started = time.perf_counter()
                count, success = run_session(client, function)
                walls.append(time.perf_counter() - started)
                delivered.append(count)
                ok.append(success)
                calls.append(len(counter.calls))
            print(f"{name:<38}{f'{min(delivered)}/{MESSAGES}':>12}{str(all(ok)):>8}"
                  f"{statistics.median(calls):>11.0f}{statistics.median(walls):>10.2f}")


if __name__ == "__main__":
    main()
