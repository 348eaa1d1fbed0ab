"""S3 message chunks: tail latency (function end → ``run()`` returns) and S3 requests per session.

The same function — written with dagster-pipes' own ``PipesS3MessageWriter`` at its defaults —
runs behind the kit's entrypoint; the kit's client reads it with `S3MessageReader` (the kit's
writer takes over), dagster-aws's client with its ``PipesS3MessageReader`` at its defaults. The
function stamps its last message with the time it finished; the figure is how long after that
``run()`` returned. Target: kit p95 ≤ 1 s.
"""

import statistics
import time
import uuid
import warnings
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, ResourceParam, asset, materialize
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient
from dagster_aws.pipes import PipesS3MessageReader as PeerS3MessageReader

from bench.results import median_p95, record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import PipesLambdaClient, S3MessageReader
from pipeskit.local import LocalAWS
from pipeskit.local.testing import ApiCallCounter, deploy_pipes_function, lambda_role, publish_pipes_layer

HANDLER = PROJECT_DIR / "tests" / "integration" / "handlers" / "tail.py"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
TARGET_P95_S = 1.0
NAME = "bench_s3_tail"


def session(client: Any, function_name: str) -> float:
    """One run; returns the seconds between the function's last stamp and ``run()`` returning."""
    tails: list[float] = []

    @asset
    def tailed(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        completed = lambda_pipes.run(context=context, function_name=function_name, event={"messages": 20})
        returned = time.time()
        ended = next(m["ended_at"] for m in completed.get_custom_messages() if "ended_at" in m)
        tails.append(returned - ended)
        yield from completed.get_results()

    result = materialize([tailed], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False, run_config=QUIET)
    if not result.success or not tails:
        raise RuntimeError(f"a session failed: {result.get_step_failure_events()}")
    return tails[0]


def main() -> None:
    warnings.filterwarnings("ignore")
    with LocalAWS(port=0, quiet=True, iam=False) as aws:
        lam = aws.client("lambda", retries=0, read_timeout=300)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        aws.client("s3").create_bucket(Bucket=bucket)
        function = deploy_pipes_function(
            lam, code=HANDLER, user_handler="tail.lambda_handler",
            layer_arn=publish_pipes_layer(lam, LAYER_REQUIREMENTS), role_arn=lambda_role(aws.client("iam")),
        )  # fmt: skip

        def kit() -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            lambda_client = aws.client("lambda", retries=0, read_timeout=300)
            reader = S3MessageReader(bucket, client=counter.attach(aws.client("s3")),
                                     logs_client=aws.client("logs"), lambda_client=lambda_client)
            return PipesLambdaClient(client=lambda_client, message_reader=reader), counter

        def peer() -> tuple[Any, ApiCallCounter]:
            counter = ApiCallCounter()
            reader = PeerS3MessageReader(bucket=bucket, client=counter.attach(aws.client("s3")))
            return PeerPipesLambdaClient(client=aws.client("lambda", retries=0, read_timeout=300),
                                         message_reader=reader), counter

        session(kit()[0], function)  # warm the environment
        print(f"{'client':<44}{'tail p50 (s)':>14}{'tail p95 (s)':>14}{'S3 requests':>13}")
        figures = {}
        for name, make, repeats in (("pipes-lambda-kit S3MessageReader", kit, 20),
                                    ("dagster-aws PipesS3MessageReader (defaults)", peer, 5)):  # fmt: skip
            tails, requests = [], []
            for _ in range(repeats):
                client, counter = make()
                tails.append(session(client, function))
                requests.append(len(counter.calls))
            figures[name] = (*median_p95(tails), statistics.median(requests))
            print(f"{name:<44}{figures[name][0]:>14.2f}{figures[name][1]:>14.2f}{figures[name][2]:>13.0f}")
        left = aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
        print(f"(objects left in the bucket afterwards: {len(left)})")
    (kit_p50, kit_p95, kit_requests), (peer_p50, peer_p95, peer_requests) = figures.values()
    record(NAME, "S3 chunks: function end → run() returns", "s", kit_p50, peer=peer_p50, kit_p95=kit_p95,
           peer_p95=peer_p95, target=f"p95 ≤ {TARGET_P95_S:g} s", met=kit_p95 <= TARGET_P95_S)  # fmt: skip
    record(NAME, "S3 requests per session (the peer leaves its chunks behind)", "requests", kit_requests,
           peer=peer_requests)  # fmt: skip


if __name__ == "__main__":
    main()
