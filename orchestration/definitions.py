"""Dagster definitions that run the reference deployment's functions: ``dagster dev -m orchestration.definitions``.

Function names follow the stack's ``<stack>-<name>`` convention; set ``PIPESKIT_STACK`` (default
``pipeskit-dev``) to target another stage. AWS credentials, region and endpoint come from the usual
boto3 environment (``AWS_ENDPOINT_URL`` points everything at the local AWS); the stack's buckets and
queues from the ``PIPESKIT_*`` variables of its outputs (``PIPESKIT_MESSAGES_BUCKET``,
``PIPESKIT_WORK_QUEUE_URL``, ``PIPESKIT_DEAD_LETTER_QUEUE_URL``, …), which the fan-out needs.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetObservation,
    AssetSpec,
    BackfillPolicy,
    DailyPartitionsDefinition,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from pipeskit import FanOutSummary, PipesLambdaClient
from pipeskit.settings import Settings

DEMO_PARTITIONS = DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-04")
BACKFILL_PARTITIONS = DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-31")
"""The 30 days 2026-10-01 … 2026-10-30 of ``daily_order_totals`` (the end date is exclusive)."""


@dataclass(frozen=True)
class DeploymentSettings(Settings):
    """Which deployment the definitions target.

    Attributes:
        stack: name of the deployed stack (``PIPESKIT_STACK``); its functions are ``<stack>-<name>``.
    """

    stack: str = "pipeskit-dev"


def function_name(name: str) -> str:
    """Physical name of the deployment's function ``name`` in the target stack."""
    return f"{DeploymentSettings.from_env().stack}-{name}"


@asset(
    partitions_def=DEMO_PARTITIONS,
    check_specs=[AssetCheckSpec("amounts_are_positive", asset="daily_orders_summary")],
    group_name="lambda_demo",
    kinds={"lambda", "python"},
)
def daily_orders_summary(
    context: AssetExecutionContext, lambda_pipes: PipesLambdaClient
) -> Iterator[object]:
    """One day of orders summarized on Lambda; the partition key reaches the function."""
    completed = lambda_pipes.run(
        context=context, function_name=function_name("dataset-summary"), event={"rows": 2000}
    )
    context.log.info(f"function returned total_amount={completed.return_value['total_amount']}")
    yield from completed.get_results()


@multi_asset(
    specs=[AssetSpec("orders_emea_summary"), AssetSpec("orders_apac_summary")],
    check_specs=[AssetCheckSpec("amounts_are_positive", asset="orders_emea_summary"),
                 AssetCheckSpec("amounts_are_positive", asset="orders_apac_summary")],
    group_name="lambda_demo",
)
def regional_summaries(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient) -> Iterator[object]:
    """Two assets materialized by one invocation: the function reports each key in scope with its own
    region's figures and its own check."""
    yield from lambda_pipes.run(
        context=context, function_name=function_name("dataset-summary"), event={"rows": 500, "day": "2026-11-01"}
    ).get_results()


@asset(group_name="lambda_demo", kinds={"lambda"})
def docs_style_metric(context: AssetExecutionContext, lambda_pipes_logs: PipesLambdaClient) -> MaterializeResult:
    """The Dagster docs' handler, unmodified; messages read back from CloudWatch Logs."""
    return lambda_pipes_logs.run(
        context=context, function_name=function_name("docs-style"), event={"some_parameter_value": 41}
    ).get_materialize_result()


@asset(
    partitions_def=BACKFILL_PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
    output_required=False,
    group_name="lambda_demo",
    kinds={"lambda", "python"},
)
def daily_order_totals(context: AssetExecutionContext, lambda_pipes: PipesLambdaClient) -> Iterator[object]:
    """Each day's order totals. A backfill of any range of days is one run (single-run backfill
    policy) whose partitions fan out over the work queue to the fan-out worker: one Pipes session and
    one materialization per day, recorded as each day ends."""
    summary = yield from lambda_pipes.stream_fan_out(
        context=context, items=context.partition_keys, function_name=function_name("fan-out-worker"),
        transport="sqs",  # the work queue and its dead-letter queue, whatever the number of days
    )
    figures = fan_out_figures(summary)
    context.log.info(
        f"fan-out over {len(summary.results)} partitions: {summary.succeeded} succeeded, {summary.failed} failed "
        f"in {summary.wall_s:.1f} s ({figures['items_per_s'].value} items/s), "
        f"{summary.duplicates} duplicates absorbed"
    )
    # The run's figures, on the asset (its materializations are the partitions'): recorded even when
    # the tolerance fails the step below.
    yield AssetObservation(asset_key=context.asset_key, metadata=figures)
    summary.raise_for_failures()


def fan_out_figures(summary: FanOutSummary) -> dict[str, MetadataValue]:
    """A fan-out's summary as metadata (`FanOutSummary.metadata`), with the items it ran per second
    (those a previous execution of the run finished are not counted)."""
    ran = len(summary.results) - summary.resumed
    rate = ran / summary.wall_s if summary.wall_s > 0 else 0.0
    return {**summary.metadata(), "items_per_s": MetadataValue.float(round(rate, 2))}


RESOURCES = {
    "lambda_pipes": PipesLambdaClient(),
    # the same client on the CloudWatch Logs channel: configuration, editable in the UI's launchpad
    "lambda_pipes_logs": PipesLambdaClient(channel="logs"),
}

defs = Definitions(
    assets=[daily_orders_summary, regional_summaries, docs_style_metric, daily_order_totals], resources=RESOURCES
)
