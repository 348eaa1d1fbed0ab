"""Fan-out: 1,000 no-op items through the work queue, against the peer's way (one ``run()`` per item).

The kit's ``fan_out`` sends the items to an SQS work queue consumed by a Powertools batch worker
(batch size 10, at most 4 concurrent batches); dagster-aws's ``PipesLambdaClient`` has no fan-out, so
its users call ``run()`` once per item, one after another. Both run in the same asset with the same
items against the same local AWS, which runs in a child process: the orchestrator's CPU time and
peak memory are this process's own. Items lost (no outcome) and duplicated (a second
materialization of an item) are counted from the Dagster events.
"""

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    DagsterInstance,
    MaterializeResult,
    ResourceParam,
    asset,
    materialize,
)
from dagster_aws.pipes import PipesLambdaClient as PeerPipesLambdaClient

from bench.child_aws import ChildAWS
from bench.results import record
from infra.constants import LAYER_REQUIREMENTS, PROJECT_DIR
from pipeskit import DeploymentSettings, FanOutSettings, PipesLambdaClient, S3MessageReader
from pipeskit.local.testing import deploy_pipes_function, lambda_role, publish_pipes_layer, work_queue
from pipeskit_lambda.protocol import ITEM_KEY

HANDLERS = PROJECT_DIR / "tests" / "integration" / "handlers"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
ITEMS = int(os.environ.get("BENCH_FAN_OUT_ITEMS", "1000"))
WORK_S = float(os.environ.get("BENCH_FAN_OUT_WORK_S", "0"))  # seconds of work per item (0: no-op)
NAME = "bench_fan_out"
NAMES = {"kit": "pipes-lambda-kit fan_out (SQS)", "peer": "dagster-aws run() per item"}


def measure(name: str, body: Any, client: Any) -> dict[str, Any]:
    """Materialize one asset running ``body``; the orchestrator's wall, CPU and memory around it."""
    out: dict[str, Any] = {}

    @asset
    def fanned(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        out.update(body(context, lambda_pipes))
        yield from out.pop("events")
        yield MaterializeResult(metadata={"items": len(out["items"])})

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False, run_config=QUIET)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    if not result.success:
        raise RuntimeError(f"{name}: {result.get_step_failure_events()}")
    per_item = Counter(out["items"])
    return {
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "rss_mb": after.ru_maxrss / 1024,
        "lost": ITEMS - len(per_item),
        "duplicated": sum(n - 1 for n in per_item.values()),
    }


def item(n: int) -> dict[str, Any]:
    return {"id": f"i{n:04d}", "sleep_s": WORK_S}


def kit_body(context: AssetExecutionContext, client: PipesLambdaClient) -> dict[str, Any]:
    summary = client.fan_out(context=context, items=[item(n) for n in range(ITEMS)], deadline_s=1800)
    items = [e.metadata["item"].value for e in summary.events if "item" in e.metadata]
    return {"events": summary.events, "items": items}


def peer_body(function: str) -> Any:
    def body(context: AssetExecutionContext, client: PeerPipesLambdaClient) -> dict[str, Any]:
        events = []
        for n in range(ITEMS):  # its results are MaterializeResults, of which one asset yields one: recorded instead
            results = client.run(context=context, function_name=function, event={ITEM_KEY: item(n)})
            events += [AssetMaterialization(context.asset_key, metadata=r.metadata) for r in results.get_results()]
        return {"events": events, "items": [e.metadata["item"].value for e in events if "item" in e.metadata]}

    return body


def main() -> None:
    work = f"items of {WORK_S:g} s work" if WORK_S else "no-op items"
    print(f"{ITEMS} {work}, one asset; each client in its own process, the local AWS in another")
    print(f"{'client':<34}{'wall (s)':>10}{'items/s':>9}{'orch. CPU (s)':>15}{'peak RSS (MB)':>15}"
          f"{'lost':>6}{'dup.':>6}", flush=True)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for which in NAMES:
            out = Path(tmp) / f"{which}.json"
            subprocess.run([sys.executable, "-m", "bench.bench_fan_out", which, str(out)], check=True)
            rows[which] = json.loads(out.read_text())
    kit, peer = rows["kit"], rows["peer"]
    per_item_ms = 1000 * kit["cpu"] / ITEMS
    sized = f"{ITEMS:,} {work}"
    record(NAME, f"fan-out of {sized}: orchestrator CPU per item", "ms", per_item_ms,
           peer=1000 * peer["cpu"] / ITEMS, target="≤ 10 ms", met=per_item_ms <= 10)  # fmt: skip
    record(NAME, f"fan-out of {sized}: items lost + duplicated", "items", kit["lost"] + kit["duplicated"],
           peer=peer["lost"] + peer["duplicated"], target="0", met=kit["lost"] + kit["duplicated"] == 0)  # fmt: skip
    record(NAME, f"fan-out of {sized}: wall", "s", kit["wall"], peer=peer["wall"])
    record(NAME, f"fan-out of {sized}: orchestrator peak RSS", "MB", kit["rss_mb"], peer=peer["rss_mb"])


def run_one(which: str, out: Path) -> None:
    """Measure one client in this process; its figures go to ``out`` (JSON)."""
    warnings.filterwarnings("ignore")
    aws = ChildAWS()
    try:
        s3, sqs, lam = aws.client("s3"), aws.client("sqs"), aws.client("lambda", read_timeout=300, retries=0)
        suffix = uuid.uuid4().hex[:8]
        bucket = f"bench-fan-out-{suffix}"
        s3.create_bucket(Bucket=bucket)
        queue, queue_arn, dlq = work_queue(sqs, visibility_timeout_s=60, max_receive_count=3)
        layer, role = publish_pipes_layer(lam, LAYER_REQUIREMENTS), lambda_role(aws.client("iam"))
        worker = deploy_pipes_function(lam, code=HANDLERS / "fan_worker.py", user_handler="fan_worker.handler",
                                       layer_arn=layer, role_arn=role, timeout_s=30)
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=worker, BatchSize=10,
                                        FunctionResponseTypes=["ReportBatchItemFailures"],
                                        ScalingConfig={"MaximumConcurrency": 4})
        single = deploy_pipes_function(lam, code=HANDLERS / "fan_item.py", user_handler="fan_item.lambda_handler",
                                       layer_arn=layer, role_arn=role, timeout_s=30)
        if which == "kit":
            client: Any = PipesLambdaClient(
                client=lam, message_reader=S3MessageReader(bucket, client=s3, lambda_client=lam), sqs_client=sqs,
                deployment=DeploymentSettings(work_queue_url=queue, dead_letter_queue_url=dlq),
                fan_out_settings=FanOutSettings(fan_out_progress_interval_s=3600),
            )  # fmt: skip
        else:
            client = PeerPipesLambdaClient(client=lam)
        with contextlib.redirect_stdout(io.StringIO()):  # the peer prints each invocation's log tail
            row = measure(which, kit_body if which == "kit" else peer_body(single), client)
        print(f"{NAMES[which]:<34}{row['wall']:>10.1f}{ITEMS / row['wall']:>9.1f}{row['cpu']:>15.1f}"
              f"{row['rss_mb']:>15.0f}{row['lost']:>6}{row['duplicated']:>6}", flush=True)
        out.write_text(json.dumps(row))
    finally:
        aws.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_one(sys.argv[1], Path(sys.argv[2]))
    else:
        main()
