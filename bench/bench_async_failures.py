"""Asynchronous runs whose function dies: messages delivered and time to the run's outcome.

One Dagster-docs-style handler (behind the kit's entrypoint) reports 50 log messages, none of them
uploaded yet, then exits (``os._exit``), is killed (SIGKILL, as the out-of-memory killer does) or
times out (function timeout 3 s). The kit's client runs it as an ``Event`` invocation on the S3
channel, with no on-failure destination and a 30 s silence margin, so the outcome must come from
the function's REPORT line. dagster-aws's ``PipesLambdaClient`` has no asynchronous runs: there is
no peer figure. Targets: every message delivered; the outcome within a few seconds of the end
(for the timeout, of the function's timeout), never the timeout plus the margin.
"""

import re
import time
import uuid
import warnings
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, ResourceParam, asset, materialize

from bench.results import record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import LambdaClientSettings, PipesLambdaClient
from pipeskit.channels import S3MessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import deploy_pipes_function, lambda_role, publish_pipes_layer

HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "dying.py"
SENT = 50
TIMEOUT_S = 3
MODES = {"exit": "exits", "kill": "is killed", "timeout": "times out"}
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
NUMBERED = re.compile(r"message \d{3}")
NAME = "bench_async_failures"


def run_event(client: Any, function_name: str, mode: str) -> tuple[int, float, bool]:
    """One asynchronous run: (numbered messages in Dagster's log, seconds to the outcome, success)."""

    @asset
    def dying(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        return lambda_pipes.run(context=context, function_name=function_name, event={"messages": SENT, "mode": mode},
                                invocation_type="Event").get_results()  # fmt: skip

    instance = DagsterInstance.ephemeral()
    started = time.perf_counter()
    result = materialize([dying], resources={"lambda_pipes": client}, instance=instance, raise_on_error=False,
                         run_config=QUIET)  # fmt: skip
    took = time.perf_counter() - started
    logged = {r.user_message for r in instance.all_logs(result.run_id) if NUMBERED.fullmatch(r.user_message or "")}
    return len(logged), took, result.success


def main() -> None:
    warnings.filterwarnings("ignore")
    with LocalAWS(port=0, quiet=True, iam=False) as aws:
        lam = aws.client("lambda", retries=0, read_timeout=300)
        function = deploy_pipes_function(
            lam, code=HANDLER, user_handler="dying.lambda_handler", timeout_s=TIMEOUT_S,
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip
        lam.put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=0)
        bucket = f"bench-async-{uuid.uuid4().hex[:8]}"
        aws.client("s3").create_bucket(Bucket=bucket)
        client = PipesLambdaClient(
            client=lam, settings=LambdaClientSettings(async_timeout_margin_s=30.0),
            message_reader=S3MessageReader(bucket, client=aws.client("s3"), logs_client=aws.client("logs"),
                                           lambda_client=lam),
        )  # fmt: skip
        run_event(client, function, "exit")  # warm the environment and the clients
        print(f"asynchronous runs (S3 channel, no failure queue, margin 30 s): {SENT} messages, then the function…\n")
        for mode, what in MODES.items():
            delivered, took, success = run_event(client, function, mode)
            print(f"  {what:<12} {delivered}/{SENT} delivered, outcome after {took:.1f} s, run failed: {not success}")
            record(NAME, f"messages delivered, asynchronous run whose function {what}", "%", 100 * delivered / SENT,
                   target="100 % (dagster-aws: no asynchronous runs)", met=delivered == SENT and not success,
                   higher_is_better=True)  # fmt: skip
            limit = TIMEOUT_S + 10 if mode == "timeout" else 10
            record(NAME, f"time to the outcome, asynchronous run whose function {what}", "s", took,
                   target=f"≤ {limit} s (timeout + margin would be {TIMEOUT_S + 30} s)", met=took <= limit)  # fmt: skip


if __name__ == "__main__":
    main()
