"""The real CDK CLI deploys the reference stack to the local AWS; the deployed code really runs."""

import json
import re

import pytest

from infra.constants import EXAMPLE_FUNCTIONS, OutputNames
from infra.demo import DemoReport, deployment_env, materialize_demo, print_summary
from pipeskit.cli import main
from pipeskit.local import LocalAWS

pytestmark = pytest.mark.e2e
STACK = "pipeskit-dev"


def test_cdk_deploy_reports_every_output(deployed: DemoReport) -> None:
    for spec in EXAMPLE_FUNCTIONS:
        assert deployed.outputs[OutputNames.function_name(spec.construct_id)] == f"pipeskit-dev-{spec.name}"
    assert deployed.outputs[OutputNames.WORK_QUEUE_URL].startswith("http")
    assert deployed.outputs[OutputNames.PIPES_LAYER_ARN].startswith("arn:aws:lambda:")


def test_deployed_function_runs_with_its_layer(deployed: DemoReport, local_aws: LocalAWS) -> None:
    lam = local_aws.client("lambda", retries=0)
    config = lam.get_function_configuration(FunctionName="pipeskit-dev-hello")
    assert [layer["Arn"] for layer in config["Layers"]] == [deployed.outputs[OutputNames.PIPES_LAYER_ARN]]
    response = lam.invoke(FunctionName="pipeskit-dev-hello", Payload=json.dumps({"name": "kit"}))
    assert "FunctionError" not in response
    # the handler imports dagster_pipes and Powertools: only the deployed layer provides them here
    assert json.loads(response["Payload"].read()) == {"greeting": "hello, kit", "function": "pipeskit-dev-hello"}


def test_dagster_materializes_the_demo_assets_on_the_deployed_stack(
    deployed: DemoReport, as_orchestrator: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestration.definitions import BACKFILL_PARTITIONS

    materialize_demo(deployed)  # as an IAM user holding only the stack's OrchestratorPolicy
    assert deployed.runs_failed == 0
    assert deployed.runs_ok == 5, "a run per partition and one for the two others, then ONE for the backfill"
    keys = sorted({(m.asset_key.to_user_string(), m.partition) for m in deployed.materializations})
    assert keys == [
        ("daily_orders_summary", "2026-11-01"),
        ("daily_orders_summary", "2026-11-02"),
        ("daily_orders_summary", "2026-11-03"),
        ("docs_style_metric", None),
        ("orders_apac_summary", None),
        ("orders_emea_summary", None),
    ]
    assert all(c.passed for c in deployed.checks) and len(deployed.checks) == 5
    by_key = {m.asset_key.to_user_string(): m for m in deployed.materializations}
    emea, apac = by_key["orders_emea_summary"], by_key["orders_apac_summary"]
    assert emea.metadata["rows"].value != apac.metadata["rows"].value, "each region its own figures"
    by_region = emea.metadata["orders_by_region"].value
    assert by_region["emea"] == emea.metadata["rows"].value > 0 and by_region["apac"] == by_region["amer"] == 0
    checked = {c.asset_key.to_user_string() for c in deployed.checks}
    assert {"orders_emea_summary", "orders_apac_summary"} <= checked, "each regional asset its own check"
    docs = next(m for m in deployed.materializations if m.asset_key.to_user_string() == "docs_style_metric")
    assert docs.metadata["some_metric"].value == 42

    # the single-run backfill: 30 days, one run, one fan-out over the work queue, each day recorded once
    backfill = deployed.backfill
    assert backfill is not None
    keys = BACKFILL_PARTITIONS.get_partition_keys()
    assert len(keys) == 30 and backfill.requested == keys
    assert sorted(backfill.partitions) == keys, "every partition materialized, none twice"
    assert len(backfill.run_ids) == 1
    figures = backfill.figures
    assert (figures["items"], figures["succeeded"], figures["failed"]) == (30, 30, 0)
    assert figures["wall_s"] > 0 and figures["items_per_s"] > 0 and figures["duplicates_absorbed"] >= 0
    assert backfill.example.partition == "2026-10-01"
    assert backfill.example.metadata["orders"].value > 0, "the worker totalled the day and reported it"
    print_summary(deployed)
    out = capsys.readouterr().out
    assert "daily_order_totals [2026-10-01...2026-10-30]: 30 of 30 partitions materialized, each once, in 1 run" in out
    assert re.search(
        r"items 30 · succeeded 30 · failed 0 · wall \d+\.\d s · \d+\.\d items/s · duplicates absorbed \d+", out
    ), out


def test_the_orchestrator_policy_is_enough_for_asynchronous_runs_and_fan_outs(
    deployed: DemoReport, as_orchestrator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user holding only the stack's OrchestratorPolicy, on the IAM-enforcing local AWS: the client's
    buckets and queues read from the stack's outputs (stack_name), an asynchronous S3-channel run (context
    and chunks, attempt ends from the log, the failure queue) and a fan-out over the work queue (resume
    markers, the dead-letter queue) — every call allowed."""
    from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

    from pipeskit import PipesLambdaClient

    outputs = deployed.outputs
    for variable in deployment_env(outputs):  # every bucket and queue comes from the stack
        monkeypatch.delenv(variable)
    client = PipesLambdaClient(channel="s3", stack_name=STACK)
    assert client.deployment_settings.failure_queue_url == outputs[OutputNames.FAILURE_QUEUE_URL]
    docs_style = outputs[OutputNames.function_name("DocsStyle")]
    summaries = []

    @asset
    def asynchronous(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        return lambda_pipes.run(context=context, function_name=docs_style, event={"some_parameter_value": 6},
                                invocation_type="Event").get_materialize_result()  # fmt: skip

    @asset
    def fanned_out(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient):
        summary = lambda_pipes.fan_out(context=context, items=["2026-11-01", "2026-11-02", "2026-11-03"],
                                       deadline_s=120)  # fmt: skip
        summaries.append(summary)
        yield from summary.events
        yield MaterializeResult(metadata=summary.metadata())

    result = materialize([asynchronous, fanned_out], resources={"lambda_pipes": client},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)  # fmt: skip
    failures = [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    assert result.success, failures
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in
                result.get_asset_materialization_events()}  # fmt: skip
    assert metadata["asynchronous"]["some_metric"].value == 7
    [summary] = summaries
    assert summary.succeeded == 3 and summary.failed == 0


def test_pipeskit_env_prints_the_deployed_stacks_settings_to_the_orchestrator(
    deployed: DemoReport, as_orchestrator: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env", "--stack", STACK]) == 0
    printed = capsys.readouterr().out
    expected = deployment_env(deployed.outputs)
    assert printed.splitlines() == [f"export {name}={value}" for name, value in expected.items()]
