"""The real CDK CLI deploys the reference stack to the local AWS; the deployed code really runs, from Dagster
and from the Dagster UI (``dagster dev`` serving ``orchestration/``, a run launched and read back through its
GraphQL API as the UI's launch button and run page do)."""

import json
import re
import time
import uuid
from typing import Any

import pytest

from infra.constants import EXAMPLE_FUNCTIONS, OutputNames
from infra.demo import DEMO_MODULE, DemoReport, deployment_env, materialize_demo, print_summary
from pipeskit.cli import main
from pipeskit.local import LocalAWS

from .dagster_ui import (
    ASSET,
    ASSET_JOBS_QUERY,
    CHECK,
    FUNCTION,
    PARTITION,
    RESOURCE_QUERY,
    RUN_TIMEOUT_S,
    DagsterUI,
    errors_of,
    json_or_none,
    run_page,
)

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


def test_ui_serves_the_code_location(dagster_ui: DagsterUI) -> None:
    assert dagster_ui.location == DEMO_MODULE
    data = dagster_ui.query(ASSET_JOBS_QUERY, {"selector": {"repositoryLocationName": dagster_ui.location,
                                                             "repositoryName": dagster_ui.repository}})
    nodes = data["repositoryOrError"]["assetNodes"]
    assert {"/".join(n["assetKey"]["path"]) for n in nodes} >= {
        "daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric"
    }




def test_the_client_resource_shows_its_configuration_in_the_ui(dagster_ui: DagsterUI) -> None:
    def details(resource: str) -> dict[str, Any]:
        selector = {"repositoryLocationName": dagster_ui.location, "repositoryName": dagster_ui.repository,
                    "resourceName": resource}  # fmt: skip
        found = dagster_ui.query(RESOURCE_QUERY, {"selector": selector})["topLevelResourceDetailsOrError"]
        assert found["__typename"] == "ResourceDetails", found
        return found

    plain, logs = details("lambda_pipes"), details("lambda_pipes_logs")
    fields = {f["name"]: f["description"] for f in plain["configFields"]}
    assert {"region_name", "endpoint_url", "profile_name", "read_timeout_s", "connect_timeout_s", "channel",
            "messages_bucket", "context_bucket"} <= set(fields)  # fmt: skip
    assert "CloudWatch Logs" in fields["channel"]
    configured = {v["key"]: v["value"] for v in logs["configuredValues"]}
    assert configured["channel"].strip('"') == "logs", configured


def test_run_launched_through_the_ui_shows_metadata_check_and_request_id(
    dagster_ui: DagsterUI, local_aws: LocalAWS
) -> None:
    from dagster import DagsterRunStatus
    from dagster_graphql import DagsterGraphQLClient

    selector = {"repositoryLocationName": dagster_ui.location, "repositoryName": dagster_ui.repository}
    nodes = dagster_ui.query(ASSET_JOBS_QUERY, {"selector": selector})["repositoryOrError"]["assetNodes"]
    # the job the UI's "Materialize" button launches for the asset
    job = next(n["jobNames"][0] for n in nodes if n["assetKey"]["path"] == [ASSET])

    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_ui.port, timeout=30)
    run_id = client.submit_job_execution(
        job, repository_location_name=dagster_ui.location, repository_name=dagster_ui.repository,
        asset_selection=[ASSET], tags={"dagster/partition": PARTITION},
    )
    terminal = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = client.get_run_status(run_id)
    while status not in terminal and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.get_run_status(run_id)

    run, events = run_page(dagster_ui, run_id)
    assert run["status"] == "SUCCESS", (
        f"run {run_id} is {run['status']} after {RUN_TIMEOUT_S:.0f} s:\n{errors_of(events)}\n"
        f"--- dagster dev output ---\n{dagster_ui.output()}"
    )
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]

    materializations = [e for e in events if e["__typename"] == "MaterializationEvent"]
    assert [(m["assetKey"]["path"], m["partition"]) for m in materializations] == [([ASSET], PARTITION)]
    entries = {entry["label"]: entry for entry in materializations[0]["metadataEntries"]}
    assert entries["rows"]["intValue"] == 2000
    assert entries["day"]["text"] == PARTITION
    assert entries["mean_amount"]["floatValue"] > 0
    assert sum(json.loads(entries["orders_by_region"]["jsonString"]).values()) == 2000
    assert entries["lambda_function"]["text"] == FUNCTION
    request_id = entries["lambda_request_id"]["text"]
    assert str(uuid.UUID(request_id)) == request_id

    checks = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
    assert [(c["assetKey"]["path"], c["checkName"], c["success"]) for c in checks] == [([ASSET], CHECK, True)]

    # the request id the run page shows is the invocation the local AWS ran: its platform report (the
    # stack's functions log in JSON) names it, with the invocation's outcome
    logs = local_aws.client("logs", retries=0)
    found = logs.filter_log_events(logGroupName=f"/aws/lambda/{FUNCTION}", filterPattern=f'"{request_id}"')
    reports = [record["record"] for record in map(json_or_none, (e["message"] for e in found["events"]))
               if record and record.get("type") == "platform.report"]
    assert [(r["requestId"], r["status"]) for r in reports] == [(request_id, "success")], found["events"]
