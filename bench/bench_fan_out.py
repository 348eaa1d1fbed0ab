"""Fan-out: 1,000 no-op items through the work queue, against the peer's way (one ``run()`` per item),
and 10,000 items in one fan-out.

The kit's ``stream_fan_out`` sends the items to an SQS work queue consumed by an ordinary Pipes handler
(batch size 10, at most 4 concurrent batches); dagster-aws's ``PipesLambdaClient`` has no fan-out, so
its users call ``run()`` once per item, one after another. Both yield each item's materialization as
it is known, in the same asset, with the same items, against the same local AWS, which runs in a child
process: the orchestrator's CPU time and memory are this process's own. Kit and peer run alternately,
three times each (``BENCH_FAN_OUT_REPEATS``: this host's noise is ±20 %), and each figure is the
median of its runs (items lost or doubled: the worst run's).

Figures:
- wall, and items lost (no outcome) or duplicated (a second materialization), from the Dagster events;
- S3 + SQS requests per item, function and orchestrator together (the local AWS counts what it serves;
  the event source mapping's own polling is Lambda's, not counted), and all AWS requests per item;
- orchestrator CPU per item, whole, and beyond Dagster's own recording of the item's materialization
  (measured alone, in the same process: the cost any client pays to record N materializations);
- for 10,000 items, the orchestrator's RSS growth over the run (its Dagster instance on disk, as deployed).
"""

import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
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
from pipeskit.local.testing import (
    deploy_pipes_function,
    lambda_role,
    publish_pipes_layer,
    served_requests,
    work_queue,
)
from pipeskit_lambda.protocol import ITEM_KEY

HANDLERS = PROJECT_DIR / "tests" / "integration" / "handlers"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
ITEMS = int(os.environ.get("BENCH_FAN_OUT_ITEMS", "1000"))
LARGE_ITEMS = int(os.environ.get("BENCH_FAN_OUT_LARGE_ITEMS", "10000"))
WORK_S = float(os.environ.get("BENCH_FAN_OUT_WORK_S", "0"))  # seconds of work per item (0: no-op)
REPEATS = int(os.environ.get("BENCH_FAN_OUT_REPEATS", "3"))  # kit and peer alternate; medians are kept
NAME = "bench_fan_out"
NAMES = {"kit": "pipes-lambda-kit stream_fan_out (SQS)", "peer": "dagster-aws run() per item",
         "large": "pipes-lambda-kit, one large fan-out"}  # fmt: skip

Body = Callable[[AssetExecutionContext, Any, list[str]], Iterator[Any]]


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, body: Body, client: Any, items: int, on_disk: bool = False) -> dict[str, Any]:
    """Materialize one asset running ``body``; the orchestrator's wall, CPU and memory around it.

    ``on_disk``: a Dagster instance storing its events on disk, as a deployment's does (the ephemeral
    instance keeps every event in memory, which would count as the orchestrator's)."""
    seen: list[str] = []

    @asset
    def fanned(context: AssetExecutionContext, lambda_pipes: ResourceParam[Any]):  # noqa: ANN202
        yield from body(context, lambda_pipes, seen)
        yield MaterializeResult(metadata={"items": len(seen)})

    with contextlib.ExitStack() as stack:
        instance = stack.enter_context(DagsterInstance.local_temp()) if on_disk else DagsterInstance.ephemeral()
        rss_before = rss_mb()
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance, raise_on_error=False,
                             run_config=QUIET)  # fmt: skip
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    if not result.success:
        raise RuntimeError(f"{name}: {result.get_step_failure_events()}")
    per_item = Counter(seen)
    return {
        "wall": wall,
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "rss_mb": after.ru_maxrss / 1024,
        "rss_growth_mb": after.ru_maxrss / 1024 - rss_before,
        "lost": items - len(per_item),
        "duplicated": sum(n - 1 for n in per_item.values()),
    }


def recording_floor(items: int, on_disk: bool = False) -> float:
    """CPU seconds Dagster takes to record ``items`` materializations like the items' (no AWS at all)."""

    def body(context: AssetExecutionContext, _client: Any, seen: list[str]) -> Iterator[Any]:
        for n in range(items):
            seen.append(item(n)["id"])
            yield AssetMaterialization(context.asset_key, metadata={"item": item(n)["id"], "partition_key": None})

    return float(measure("floor", body, None, items, on_disk)["cpu"])


def item(n: int) -> dict[str, Any]:
    return {"id": f"i{n:05d}", "sleep_s": WORK_S}


def kit_body(items: int) -> Body:
    def body(context: AssetExecutionContext, client: PipesLambdaClient, seen: list[str]) -> Iterator[Any]:
        stream = client.stream_fan_out(context=context, items=[item(n) for n in range(items)], deadline_s=3600)
        for event in stream:
            if "item" in event.metadata:
                seen.append(event.metadata["item"].value)
            yield event

    return body


def peer_body(function: str, items: int) -> Body:
    def body(context: AssetExecutionContext, client: PeerPipesLambdaClient, seen: list[str]) -> Iterator[Any]:
        for n in range(items):  # its results are MaterializeResults, of which one asset yields one: recorded instead
            results = client.run(context=context, function_name=function, event={ITEM_KEY: item(n)})
            for r in results.get_results():
                seen.append(r.metadata["item"].value)
                yield AssetMaterialization(context.asset_key, metadata=r.metadata)

    return body


def main() -> None:
    work = f"items of {WORK_S:g} s work" if WORK_S else "no-op items"
    print(f"{ITEMS} {work}, one asset (and {LARGE_ITEMS} in one fan-out); each client in its own process, the "
          "local AWS in another")
    print(f"{'client':<40}{'wall (s)':>9}{'items/s':>9}{'CPU (s)':>9}{'floor (s)':>10}{'S3+SQS/it':>10}"
          f"{'AWS/it':>8}{'RSS +MB':>9}{'lost':>6}{'dup.':>6}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {which: [] for which in NAMES}
    order = [*(["kit", "peer"] * REPEATS), "large"]  # alternating: a slow spell of the host hits both
    with tempfile.TemporaryDirectory() as tmp:
        for n, which in enumerate(order):
            out = Path(tmp) / f"{which}-{n}.json"
            subprocess.run([sys.executable, "-m", "bench.bench_fan_out", which, str(out)], check=True)
            runs[which].append(json.loads(out.read_text()))
    kit, peer, large = (median_row(runs[which]) for which in NAMES)
    print(f"medians of {REPEATS} runs each: kit {kit['wall']:.1f} s, peer {peer['wall']:.1f} s")
    sized = f"{ITEMS:,} {work}"
    ratio = kit["wall"] / peer["wall"]
    record(NAME, f"fan-out of {sized}: wall", "s", kit["wall"], peer=peer["wall"], target="≤ 0.5 × peer",
           met=ratio <= 0.5)  # fmt: skip
    record(NAME, f"fan-out of {sized}: S3 + SQS requests per item (function and orchestrator)", "requests",
           kit["s3_sqs"] / ITEMS, peer=peer["s3_sqs"] / ITEMS, target="≤ 3", met=kit["s3_sqs"] / ITEMS <= 3)
    record(NAME, f"fan-out of {sized}: AWS requests per item, all services", "requests", kit["aws"] / ITEMS,
           peer=peer["aws"] / ITEMS)  # fmt: skip
    net, peer_net = [1000 * (row["cpu"] - row["floor"]) / ITEMS for row in (kit, peer)]
    record(NAME, f"fan-out of {sized}: orchestrator CPU per item beyond Dagster's recording of it", "ms", net,
           peer=peer_net, target="≤ 3 ms", met=net <= 3)  # fmt: skip
    record(NAME, f"fan-out of {sized}: orchestrator CPU per item, whole", "ms", 1000 * kit["cpu"] / ITEMS,
           peer=1000 * peer["cpu"] / ITEMS)  # fmt: skip
    record(NAME, f"fan-out of {sized}: items lost + duplicated", "items", kit["lost"] + kit["duplicated"],
           peer=peer["lost"] + peer["duplicated"], target="0", met=kit["lost"] + kit["duplicated"] == 0)  # fmt: skip
    record(NAME, f"fan-out of {sized}: orchestrator peak RSS", "MB", kit["rss_mb"], peer=peer["rss_mb"])
    large_sized = f"{LARGE_ITEMS:,} {work} in one fan-out"
    record(NAME, f"{large_sized}: items lost + duplicated", "items", large["lost"] + large["duplicated"],
           target="0", met=large["lost"] + large["duplicated"] == 0)  # fmt: skip
    record(NAME, f"{large_sized}: orchestrator RSS growth", "MB", large["rss_growth_mb"], target="≤ 100 MB",
           met=large["rss_growth_mb"] <= 100)  # fmt: skip
    record(NAME, f"{large_sized}: wall", "s", large["wall"])
    record(NAME, f"{large_sized}: S3 + SQS requests per item", "requests", large["s3_sqs"] / LARGE_ITEMS,
           target="≤ 3", met=large["s3_sqs"] / LARGE_ITEMS <= 3)  # fmt: skip


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (items lost or doubled: the worst run's)."""
    merged = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    merged.update(lost=max(row["lost"] for row in rows), duplicated=max(row["duplicated"] for row in rows))
    return merged


def run_one(which: str, out: Path) -> None:
    """Measure one client in this process; its figures go to ``out`` (JSON)."""
    warnings.filterwarnings("ignore")
    items = LARGE_ITEMS if which == "large" else ITEMS
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
        if which == "peer":
            client: Any = PeerPipesLambdaClient(client=lam)
            body = peer_body(single, items)
        else:
            client = PipesLambdaClient(
                client=lam, message_reader=S3MessageReader(bucket, client=s3, lambda_client=lam), sqs_client=sqs,
                deployment=DeploymentSettings(work_queue_url=queue, dead_letter_queue_url=dlq),
                fan_out_settings=FanOutSettings(fan_out_progress_interval_s=3600),
            )  # fmt: skip
            body = kit_body(items)
        on_disk = which == "large"  # its memory is the figure: Dagster's events go to disk, as deployed
        floor = 0.0 if on_disk else recording_floor(items)
        served_requests(aws.endpoint_url, reset=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the peer prints each invocation's log tail
            row = measure(which, body, client, items, on_disk)
        served = served_requests(aws.endpoint_url)
        row.update(floor=floor, s3_sqs=served["s3"] + served["sqs"], aws=sum(served.values()))
        print(f"{NAMES[which]:<40}{row['wall']:>9.1f}{items / row['wall']:>9.1f}{row['cpu']:>9.1f}{floor:>10.1f}"
              f"{row['s3_sqs'] / items:>10.2f}{row['aws'] / items:>8.2f}{row['rss_growth_mb']:>9.0f}{row['lost']:>6}"
              f"{row['duplicated']:>6}", flush=True)  # fmt: skip
        out.write_text(json.dumps(row))
    finally:
        aws.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_one(sys.argv[1], Path(sys.argv[2]))
    else:
        main()
