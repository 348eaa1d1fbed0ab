"""Durable functions on the local AWS (AWS's durable executor behind its Lambda API): one durable
execution is one Pipes session, followed by the client to its end; hours of waits take seconds."""

import json
import threading
import time
from typing import Any

import pytest
from dagster import AssetCheckSpec, AssetExecutionContext, DagsterEventType, asset, materialize

from pipeskit import LambdaClientSettings, LambdaFunctionError, LogsReaderSettings, PipesLambdaClient, RateBudget
from pipeskit.channels import S3MessageReader, S3ReaderSettings
from pipeskit.local.testing import deploy_durable_function, publish_durable_layer

from .conftest import HANDLERS_DIR, Materialized, kill_and_re_execute, run_asset, start_job
from .handlers.durable_pipes import EXPECTED_LOGS, NESTED_LOGS


@pytest.fixture(scope="module")
def durable_function(local_aws, role_arn) -> Any:
    """Deploy a handler of ``handlers/durable_pipes.py`` as a durable function with the durable pipes layer."""
    lam = local_aws.client("lambda")
    layer = publish_durable_layer(lam)
    created: dict[str, str] = {}

    def _deploy(handler: str) -> str:
        if handler not in created:
            created[handler] = deploy_durable_function(
                lam, code=HANDLERS_DIR / "durable_pipes.py", user_handler=f"durable_pipes.{handler}",
                layer_arn=layer, role_arn=role_arn, timeout_s=60,
            )  # fmt: skip
        return created[handler]

    return _deploy


def durable_client(local_aws, bucket) -> PipesLambdaClient:
    lam = local_aws.client("lambda", retries=0)
    reader = S3MessageReader(
        bucket, client=local_aws.client("s3"), s3_settings=S3ReaderSettings(s3_completion_timeout_s=10.0),
        logs_client=local_aws.client("logs"), lambda_client=lam,
        settings=LogsReaderSettings(ingestion_timeout_s=15.0, poll_interval_s=0.05), budget=RateBudget(50),
    )  # fmt: skip
    return PipesLambdaClient(
        client=lam, message_reader=reader, settings=LambdaClientSettings(durable_status_interval_s=0.2)
    )


def logs_of(run: Materialized) -> list[str]:
    return [message for _, message in run.log_messages()]


def executions_of(local_aws, function: str) -> list[dict[str, Any]]:
    lam = local_aws.client("lambda")
    return lam.list_durable_executions_by_function(FunctionName=function, Qualifier="$LATEST")["DurableExecutions"]


def test_three_steps_with_hours_of_waits_are_one_session(local_aws, bucket, durable_function) -> None:
    function = durable_function("three_steps")
    with local_aws.override(durable_skip_waits=True):
        run = run_asset(durable_client(local_aws, bucket), function, {}, checks=["rows_positive"])

    assert run.result.success, run.error
    assert run.completed.return_value == {"rows": 1200, "passed": True}
    assert run.completed.durable_execution_arn.startswith("arn:aws:lambda:")
    assert run.metadata()["rows"].value == 600
    assert run.check_results()["rows_positive"].passed
    logs = logs_of(run)
    assert [line for line in logs if line in EXPECTED_LOGS] == EXPECTED_LOGS  # every message once, in order
    assert any(line.startswith("[pipeskit durable] waiting 7200 s ('two-hours') until") for line in logs)
    assert "[pipeskit durable] step 'check' completed" in logs
    [execution] = executions_of(local_aws, function)
    assert execution["Status"] == "SUCCEEDED"
    print(f"durable three steps: run() took {run.elapsed_s:.1f} s")  # seven hours of waits skipped


def test_a_step_runs_a_new_execution_for_another_event_and_after_the_last_one_succeeded(
    local_aws, bucket, durable_function
) -> None:
    function = durable_function("three_steps")
    completed = []

    @asset(check_specs=[AssetCheckSpec("rows_positive", asset="three_runs")])
    def three_runs(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        for event in ({}, {}, {"wait_s": 1}):  # the same event again once it succeeded, then another event
            completed.append(lambda_pipes.run(context=context, function_name=function, event=event))
        yield from completed[-1].get_results()

    with local_aws.override(durable_skip_waits=True):
        result = materialize([three_runs], resources={"lambda_pipes": durable_client(local_aws, bucket)})

    assert result.success
    assert [run.return_value for run in completed] == [{"rows": 1200, "passed": True}] * 3
    arns = [run.durable_execution_arn for run in completed]
    assert len(set(arns)) == 3  # none re-attached to an execution whose messages were read and deleted
    assert {e["DurableExecutionArn"] for e in executions_of(local_aws, function)} >= set(arns)


def test_child_contexts_map_items_and_parallel_branches_report_each_message_once(
    local_aws, bucket, durable_function
) -> None:
    function = durable_function("nested")
    with local_aws.override(durable_skip_waits=True):
        run = run_asset(durable_client(local_aws, bucket), function, {})

    assert run.result.success, run.error
    assert run.completed.return_value == {"ok": True}
    logs = [line for line in logs_of(run) if line in NESTED_LOGS]
    assert sorted(logs) == sorted(NESTED_LOGS)  # each once, from every thread the SDK ran branches on
    assert logs[0] == "root begins" and logs[-1] == "root ends"


def test_a_step_failing_after_its_retries_fails_the_run_with_its_error(local_aws, bucket, durable_function) -> None:
    with local_aws.override(durable_skip_waits=True):
        run = run_asset(durable_client(local_aws, bucket), durable_function("failing"), {})

    assert not run.result.success
    assert isinstance(run.error, LambdaFunctionError)
    assert "the source refused the query" in run.error.error_message
    logs = logs_of(run)
    assert logs.count("before the flaky step") == 1
    assert [line for line in logs if line.startswith("attempt ")] == ["attempt 1", "attempt 2", "attempt 3"]


def test_a_callback_is_completed_through_the_kit(local_aws, bucket, durable_function) -> None:
    function = durable_function("approval")
    client = durable_client(local_aws, bucket)
    runs: list[Materialized] = []
    waiting = threading.Thread(target=lambda: runs.append(run_asset(client, function, {})), daemon=True)
    waiting.start()
    lam = local_aws.client("lambda")
    callback_id = None
    deadline = time.monotonic() + 120
    while callback_id is None and time.monotonic() < deadline:
        for execution in executions_of(local_aws, function):
            events = lam.get_durable_execution_history(DurableExecutionArn=execution["DurableExecutionArn"])["Events"]
            started = [e for e in events if e["EventType"] == "CallbackStarted"]
            if started:
                callback_id = started[0]["CallbackStartedDetails"]["CallbackId"]
        time.sleep(0.2)
    assert callback_id, "the execution never waited for its callback"

    client.complete_callback(callback_id, {"approved": True})
    waiting.join(timeout=120)

    [run] = runs
    assert run.result.success, run.error
    assert run.completed.return_value == {"approved": True}
    assert run.metadata()["approved"].value is True
    logs = logs_of(run)
    assert f"asked for approval: {callback_id}" in logs
    assert any("awaiting callback 'approval'" in line and callback_id in line for line in logs)


@pytest.mark.faults
def test_an_orchestrator_killed_during_the_wait_re_attaches_on_re_execution(
    local_aws, bucket, durable_function, tmp_path, monkeypatch
) -> None:
    """The run's process is SIGKILLed while the execution waits; the re-executed run follows the same
    execution (nothing is invoked again) and delivers each message once."""
    function = durable_function("three_steps")
    before = {execution["DurableExecutionArn"] for execution in executions_of(local_aws, function)}
    env = {**local_aws.env(), "PIPESKIT_MESSAGES_BUCKET": bucket, "DURABLE_FUNCTION": function,
           "DURABLE_EVENT": json.dumps({"wait_s": 8}), "DAGSTER_HOME": str(tmp_path)}  # fmt: skip
    job = "tests.integration.durable_defs:durable_job"
    orchestrator = start_job(job, env, monkeypatch)
    lam = local_aws.client("lambda")
    deadline = time.monotonic() + 120
    waiting = False
    while not waiting and time.monotonic() < deadline and orchestrator.poll() is None:
        for execution in [e for e in executions_of(local_aws, function) if e["DurableExecutionArn"] not in before]:
            events = lam.get_durable_execution_history(DurableExecutionArn=execution["DurableExecutionArn"])["Events"]
            waiting = any(e["EventType"] == "WaitStarted" for e in events)
        time.sleep(0.2)
    assert waiting and orchestrator.poll() is None, "the orchestrator was still running when the execution waited"
    instance, run_id = kill_and_re_execute(orchestrator, job, env)

    [execution] = [e for e in executions_of(local_aws, function) if e["DurableExecutionArn"] not in before]
    # one execution: the re-execution started none
    assert execution["Status"] == "SUCCEEDED"
    logs = [record.user_message for record in instance.all_logs(run_id) if not record.is_dagster_event]
    assert [line for line in logs if line in EXPECTED_LOGS] == EXPECTED_LOGS  # each once, in the re-executed run
    assert any("re-attached to the durable execution" in line for line in logs)
    materialized = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    assert len(materialized) == 1
