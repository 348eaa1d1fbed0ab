"""Fan-out over SQS with the local AWS's real event-source polling: nothing lost, nothing doubled."""

import json
import time
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

from pipeskit import DeploymentSettings, FanOutSettings, PipesLambdaClient, S3MessageReader
from pipeskit.local.testing import deploy_pipes_function, served_requests, work_queue

from .conftest import HANDLERS_DIR, kill_and_re_execute, start_job


@pytest.fixture
def fan_out_setup(local_aws, pipes_layer_arn, role_arn):
    """A messages bucket, a work queue with its DLQ, the worker consuming it, and a kit client."""
    s3, lam = local_aws.client("s3"), local_aws.client("lambda")
    suffix = uuid.uuid4().hex[:8]
    bucket = f"fan-out-{suffix}"
    s3.create_bucket(Bucket=bucket)
    # a batch of ten items must finish within the timeout on a busy 2-core host, where the local AWS
    # shares the test process (and its GIL) with Dagster: 15 s, and the visibility above it, as SQS needs
    worker = deploy_pipes_function(lam, code=HANDLERS_DIR / "fan_worker.py", user_handler="fan_worker.handler",
                                   layer_arn=pipes_layer_arn, role_arn=role_arn, timeout_s=15)
    client = queue_client(local_aws, bucket, consumer=worker, max_receive_count=3, max_concurrency=4,
                          fan_out_progress_interval_s=2.0)  # fmt: skip
    return client, bucket


@pytest.mark.faults
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
        yield from summary.events
        summary.raise_for_failures()
        yield MaterializeResult(metadata=summary.metadata())

    instance = DagsterInstance.ephemeral()
    with local_aws.override(esm_duplicate_delivery_rate=0.05):
        result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance)
    assert result.success
    [summary] = summaries
    statuses = Counter(r.status for r in summary.results)
    assert statuses == {"succeeded": 196, "failed": 4}
    # every failed delivery reached the step's log when it was seen, with the error named once
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if "[pipeskit fan-out] item" in e.user_message]
    for n in (7, 57, 107, 157):
        assert any(f"({items[n]!r}): attempt 3 of 3 failed: ValueError: item i{n:03d} always fails; it moves to the "
                   "dead-letter queue" in w for w in warnings), n  # fmt: skip
    assert any("attempt 1 of 3 failed: RuntimeError: item i003 fails its first attempt; SQS delivers it again once "
               "its visibility timeout (18 s) passes" in w for w in warnings)  # fmt: skip
    assert not any("Error: RuntimeError" in w or "Error: ValueError" in w for w in warnings)
    assert {r.item["id"] for r in summary.results if r.status == "failed"} == {f"i{n:03d}" for n in (7, 57, 107, 157)}
    assert all("always fails" in r.error for r in summary.results if r.status == "failed")
    request_ids = [r.request_id for r in summary.results if r.status == "succeeded"]
    assert all(request_ids), "every succeeded item names the invocation that counted"
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
        summary = lambda_pipes.fan_out(context=context, items=context.partition_keys)
        yield from summary.events  # the materializations are the items' own, one per partition
        summary.raise_for_failures()

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


def test_fan_out_over_asynchronous_invokes_with_bounded_concurrency(local_aws, fan_out_setup, handler_function):
    client, _ = fan_out_setup
    function = handler_function("fan_item", "lambda_handler")
    summaries = []

    @asset
    def invoked(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = lambda_pipes.fan_out(context=context, items=[{"id": f"x{n}"} for n in range(10)],
                                       transport="invoke", function_name=function, max_concurrency=3)
        summaries.append(summary)
        yield from summary.events
        yield MaterializeResult(metadata=summary.metadata())

    assert materialize([invoked], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral()).success
    assert [r.return_value for r in summaries[0].results] == [{"id": f"x{n}"} for n in range(10)]


@pytest.mark.faults
def test_invoked_items_that_fail_are_seen_as_they_happen_with_their_error(local_aws, fan_out_setup, handler_function):
    """No deadline: the fan-out ends when every item ended. Each failed attempt reaches the step's log
    when Lambda reports it; the item fails after Lambda's last attempt with the function's own error."""
    client, _ = fan_out_setup
    function = handler_function("fan_item", "lambda_handler")
    local_aws.client("lambda").put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=1)
    items = [{"id": f"f{n}", "fail": n % 5 == 0} for n in range(20)]
    summaries, warnings = [], []

    @asset
    def invoked(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = lambda_pipes.fan_out(context=context, items=items, transport="invoke", function_name=function,
                                       tolerated_failures=4)  # fmt: skip
        summaries.append(summary)
        yield from summary.events
        yield MaterializeResult(metadata=summary.metadata())

    instance = DagsterInstance.ephemeral()
    started = time.monotonic()
    result = materialize([invoked], resources={"lambda_pipes": client}, instance=instance)
    took = time.monotonic() - started
    assert result.success
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if "attempt" in e.user_message
                and "failed" in e.user_message]  # fmt: skip
    [summary] = summaries
    failed = {r.item["id"]: r.error for r in summary.results if r.status == "failed"}
    assert sorted(failed) == ["f0", "f10", "f15", "f5"]
    assert all(error and "ValueError" in error and f"item {key} fails" in error for key, error in failed.items())
    assert summary.succeeded == 16
    assert len(warnings) == 8, warnings  # two attempts of each failed item
    assert any("attempt 2 of 2 failed" in w and "item 0 " in w for w in warnings)
    assert took < 120, f"{took:.0f} s"


@pytest.mark.faults
def test_a_re_executed_run_skips_the_items_that_finished(local_aws, fan_out_setup, handler_function, monkeypatch):
    from dagster import ReexecutionOptions, execute_job, reconstructable

    from .resume_defs import resume_job

    _, bucket = fan_out_setup
    function = handler_function("fan_item", "lambda_handler")
    # the deadline leaves the fast items room for ten concurrent cold starts on a busy 2-core host
    items = [{"id": f"r{n}", "sleep_s": 0 if n < 6 else 25} for n in range(10)]
    for name, value in {**local_aws.env(), "PIPESKIT_MESSAGES_BUCKET": bucket, "RESUME_ITEMS": json.dumps(items),
                        "RESUME_FUNCTION": function, "RESUME_DEADLINE_S": "15"}.items():
        monkeypatch.setenv(name, value)
    instance = DagsterInstance.ephemeral()
    first = execute_job(reconstructable(resume_job), instance=instance, raise_on_error=False)
    assert not first.success, "interrupted: the slow items ran past the deadline"
    first_items = [e.materialization.metadata["item"].value for e in first.get_asset_materialization_events()]
    assert sorted(first_items) == [f"r{n}" for n in range(6)]

    monkeypatch.setenv("RESUME_DEADLINE_S", "60")
    second = execute_job(reconstructable(resume_job), instance=instance, raise_on_error=False,
                         reexecution_options=ReexecutionOptions(parent_run_id=first.run_id))
    assert second.success
    events = second.get_asset_materialization_events()
    again = [e.materialization.metadata["item"].value for e in events if "item" in e.materialization.metadata]
    assert sorted(again) == [f"r{n}" for n in range(6, 10)], "finished items are neither invoked nor materialized again"
    [summary_event] = [e for e in events if "resumed" in e.materialization.metadata]
    assert summary_event.materialization.metadata["resumed"].value == 6


@pytest.mark.faults
def test_an_orchestrator_killed_mid_fan_out_resumes_on_re_execution(local_aws, fan_out_setup, handler_function,
                                                                    tmp_path, monkeypatch):
    """The run's process is SIGKILLed once six items finished; the re-executed run skips those six."""
    from dagster import DagsterEventType

    _, bucket = fan_out_setup
    function = handler_function("fan_item", "lambda_handler")
    items = [{"id": f"k{n}", "sleep_s": 0 if n < 6 else 6} for n in range(10)]
    env = {**local_aws.env(), "PIPESKIT_MESSAGES_BUCKET": bucket, "RESUME_ITEMS": json.dumps(items),
           "RESUME_FUNCTION": function, "RESUME_DEADLINE_S": "120", "DAGSTER_HOME": str(tmp_path)}  # fmt: skip
    job = "tests.integration.resume_defs:resume_job"
    orchestrator = start_job(job, env, monkeypatch)
    s3 = local_aws.client("s3")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and orchestrator.poll() is None:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="pipeskit/").get("Contents", [])]
        markers = [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys if "/done/" in k]
        if sum(m["status"] == "succeeded" for batch in markers for m in batch) >= 6:
            break
        time.sleep(0.2)
    assert orchestrator.poll() is None, "the orchestrator was still running when six items had finished"
    instance, run_id = kill_and_re_execute(orchestrator, job, env)
    logs = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    events = [record.dagster_event.event_specific_data for record in logs]
    again = [e.materialization.metadata["item"].value for e in events if "item" in e.materialization.metadata]
    assert sorted(again) == [f"k{n}" for n in range(6, 10)], "finished items are neither invoked nor materialized again"
    [summary_event] = [e for e in events if "resumed" in e.materialization.metadata]
    assert summary_event.materialization.metadata["resumed"].value == 6


def queue_client(local_aws, bucket, *, consumer=None, max_receive_count=2, max_concurrency=None, silence_s=30.0,
                 **settings):  # fmt: skip
    """A fresh work queue (with ``consumer`` mapped to it, if any) and a kit client on it."""
    sqs, lam = local_aws.client("sqs"), local_aws.client("lambda")
    queue, queue_arn, dlq = work_queue(sqs, visibility_timeout_s=18, max_receive_count=max_receive_count)
    if consumer:
        scaling = {"ScalingConfig": {"MaximumConcurrency": max_concurrency}} if max_concurrency else {}
        lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=consumer, BatchSize=10,
                                        FunctionResponseTypes=["ReportBatchItemFailures"], **scaling)  # fmt: skip
    return PipesLambdaClient(
        client=lam, message_reader=S3MessageReader(bucket, client=local_aws.client("s3"),
                                                   logs_client=local_aws.client("logs"), lambda_client=lam),
        sqs_client=sqs, deployment=DeploymentSettings(work_queue_url=queue, dead_letter_queue_url=dlq),
        fan_out_settings=FanOutSettings(fan_out_poll_interval_s=0.2, fan_out_silence_s=silence_s, **settings),
    )  # fmt: skip


def fan_out_asset(items, **options):
    summaries = []

    @asset(output_required=False)
    def fanned(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = yield from lambda_pipes.stream_fan_out(context=context, items=items, **options)
        summaries.append(summary)
        summary.raise_for_failures()

    return fanned, summaries


def test_a_consumer_that_never_opens_pipes_fails_its_items_at_once_saying_why(local_aws, bucket, handler_function):
    consumer = handler_function("fan_careless", "unopened", timeout=15)
    client = queue_client(local_aws, bucket, consumer=consumer)
    fanned, summaries = fan_out_asset(["a", "b"], deadline_s=120)
    started = time.monotonic()
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False)  # fmt: skip
    assert not result.success
    assert time.monotonic() - started < 60, "told when the items ended, not at the deadline"
    [summary] = summaries
    for r in summary.results:
        assert r.status == "failed"
        assert f'the function returned {{"ignored": "{r.item}"}} for it [request id ' in r.error
        assert "its handler never opened the Pipes session" in r.error and consumer in r.error
    [failure] = result.get_step_failure_events()
    assert "item 0 ('a'): the function returned" in failure.event_specific_data.error.message


def test_a_consumer_without_the_kit_is_reported_within_the_silence_naming_it(local_aws, bucket, handler_function):
    consumer = handler_function("fan_careless", "plain", entrypoint=False, timeout=15)
    client = queue_client(local_aws, bucket, consumer=consumer, silence_s=3.0)
    fanned, _ = fan_out_asset(["a", "b", "c"], deadline_s=12)
    instance = DagsterInstance.ephemeral()
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance, raise_on_error=False)
    assert not result.success  # the deadline: nothing will ever come
    logs = instance.all_logs(result.run_id)
    started = next(r.timestamp for r in logs if r.dagster_event and r.dagster_event.event_type_value == "STEP_START")
    [warning] = [r for r in logs if "no item has opened a Pipes session" in r.user_message]
    assert warning.timestamp - started < 10, "reported within the silence, well before the deadline"
    assert f"its consumer {consumer} (Enabled) took them off the queue" in warning.user_message
    assert "pipeskit_lambda.entrypoint.handler" in warning.user_message


def test_a_queue_without_a_consumer_is_reported(local_aws, bucket):
    client = queue_client(local_aws, bucket, silence_s=2.0)
    fanned, _ = fan_out_asset(["a"], deadline_s=6)
    instance = DagsterInstance.ephemeral()
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance, raise_on_error=False)
    assert not result.success
    assert any("no function is mapped to the queue: connect one (WorkQueue.add_consumer(function)" in r.user_message
               for r in instance.all_logs(result.run_id))  # fmt: skip


def test_following_costs_what_ended_not_the_fan_outs_size(local_aws, fan_out_setup):
    """Short items end in a shared object per batch, and each poll lists only the ends not read yet:
    well under one S3 or SQS request per item, function and orchestrator together."""
    client, _ = fan_out_setup
    fanned, summaries = fan_out_asset([{"id": f"n{n}"} for n in range(150)], deadline_s=120)
    served_requests(local_aws.endpoint_url, reset=True)
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=DagsterInstance.ephemeral())
    counts = served_requests(local_aws.endpoint_url)
    assert result.success and summaries[0].succeeded == 150
    assert counts["s3"] + counts["sqs"] <= 150, counts


def test_a_long_items_logs_reach_dagster_while_it_runs(local_aws, fan_out_setup):
    client, _ = fan_out_setup
    fanned, _ = fan_out_asset([{"id": "slow", "sleep_s": 6}], deadline_s=120)
    instance = DagsterInstance.ephemeral()
    result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance)
    assert result.success
    logs = instance.all_logs(result.run_id)
    [line] = [r for r in logs if "item 0: item slow" in r.user_message]
    [materialized] = [r for r in logs if r.dagster_event and r.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                      and "item" in r.dagster_event.event_specific_data.materialization.metadata]  # fmt: skip
    assert materialized.timestamp - line.timestamp > 3, "its log came through its chunks, before its end"


def test_auto_invokes_the_function_for_few_items_and_uses_the_queue_above(local_aws, bucket, handler_function):
    """The model's choice (bench/model_fan_out.py): invokes up to PIPESKIT_FAN_OUT_INVOKE_MAX_ITEMS items."""
    worker = handler_function("fan_worker", timeout=15)
    client = queue_client(local_aws, bucket, consumer=worker, fan_out_invoke_max_items=3)
    for items, expected in ((["a", "b", "c"], f"through asynchronous invokes of {worker}"),
                            (["a", "b", "c", "d"], "through the work queue")):  # fmt: skip
        fanned, summaries = fan_out_asset(items, function_name=worker, deadline_s=60)
        instance = DagsterInstance.ephemeral()
        result = materialize([fanned], resources={"lambda_pipes": client}, instance=instance)
        assert result.success and summaries[0].succeeded == len(items)
        assert any(f"{len(items)} items {expected}" in r.user_message for r in instance.all_logs(result.run_id))
