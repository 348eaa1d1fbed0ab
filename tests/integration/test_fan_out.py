"""Fan-out over SQS with the local AWS's real event-source polling: nothing lost, nothing doubled."""

import json
import uuid
from collections import Counter

import pytest
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    materialize,
)

from pipeskit import FanOutSettings, PipesLambdaClient, S3MessageReader
from pipeskit.local.testing import deploy_pipes_function

from .conftest import HANDLERS_DIR


@pytest.fixture
def fan_out_setup(local_aws, pipes_layer_arn, role_arn):
    """A messages bucket, a work queue with its DLQ, the worker consuming it, and a kit client."""
    s3, sqs, lam = local_aws.client("s3"), local_aws.client("sqs"), local_aws.client("lambda")
    suffix = uuid.uuid4().hex[:8]
    bucket = f"fan-out-{suffix}"
    s3.create_bucket(Bucket=bucket)
    dlq = sqs.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"work-{suffix}", Attributes={
        "VisibilityTimeout": "3", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    })["QueueUrl"]  # fmt: skip
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    worker = deploy_pipes_function(lam, code=HANDLERS_DIR / "fan_worker.py", user_handler="fan_worker.handler",
                                   layer_arn=pipes_layer_arn, role_arn=role_arn, timeout_s=3)
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=worker, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"],
                                    ScalingConfig={"MaximumConcurrency": 4})
    client = PipesLambdaClient(
        client=lam,
        message_reader=S3MessageReader(bucket, client=s3, logs_client=local_aws.client("logs"), lambda_client=lam),
        sqs_client=sqs,
        fan_out_settings=FanOutSettings(work_queue_url=queue, dead_letter_queue_url=dlq,
                                        fan_out_poll_interval_s=0.2, fan_out_progress_interval_s=2.0),
    )
    return client, bucket


def test_two_hundred_items_with_failures_and_duplicates_add_up(local_aws, fan_out_setup):
    client, bucket = fan_out_setup
    run = uuid.uuid4().hex[:8]
    items = [
        {"id": f"i{n:03d}", "bucket": bucket, "run": run,
         "fail": "always" if n % 50 == 7 else "once" if n % 10 == 3 else None}
        for n in range(200)
    ]  # fmt: skip
    summaries = []

    @asset
    def fanned(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = lambda_pipes.fan_out(context=context, items=items, tolerated_failures=4, deadline_s=120)
        summaries.append(summary)
        return MaterializeResult(metadata=summary.metadata())

    with local_aws.override(esm_duplicate_delivery_rate=0.05):
        result = materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral())
    assert result.success
    [summary] = summaries
    statuses = Counter(r.status for r in summary.results)
    assert statuses == {"succeeded": 196, "failed": 4}
    assert {r.item["id"] for r in summary.results if r.status == "failed"} == {f"i{n:03d}" for n in (7, 57, 107, 157)}
    assert all("always fails" in r.error for r in summary.results if r.status == "failed")
    assert {r.return_value["id"] for r in summary.results if r.status == "succeeded"} == {
        i["id"] for i in items if i["fail"] != "always"
    }
    per_item = Counter(
        e.materialization.metadata["item"].value for e in result.get_asset_materialization_events()
        if "item" in e.materialization.metadata
    )
    assert set(per_item.values()) == {1}, "no item materialized twice"
    assert len(per_item) == 196
    assert summary.duplicates >= 1, "the injected duplicate deliveries were absorbed"
    leftover = local_aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="pipeskit/").get("KeyCount", 0)
    assert leftover == 0


def test_a_single_run_backfill_records_one_materialization_per_partition(fan_out_setup):
    client, bucket = fan_out_setup
    days = DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-31")

    @asset(partitions_def=days, backfill_policy=BackfillPolicy.single_run(), output_required=False)
    def daily(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        lambda_pipes.fan_out(context=context, items=context.partition_keys)
        if False:  # the materializations are the items' own, one per partition
            yield

    keys = days.get_partition_keys()
    assert len(keys) == 30
    result = materialize(
        [daily], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )  # fmt: skip
    assert result.success
    events = result.get_asset_materialization_events()
    assert sorted(e.materialization.partition for e in events) == keys
    assert all(e.materialization.metadata["item"].value == e.materialization.partition for e in events)
    assert all(e.materialization.metadata["partition_key"].value == e.materialization.partition for e in events), (
        "each item's session had its own partition key"
    )
