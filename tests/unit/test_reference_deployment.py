"""The reference deployment: its Dagster code location loads; its demo takes the local AWS's port,
gives Dagster the stack's outputs and prints the fan-out backfill."""

import pytest

from infra.constants import OutputNames
from infra.demo import BackfillReport, DemoReport, build_parser, deployment_env, print_summary
from pipeskit.local.settings import LocalAWSSettings
from pipeskit.settings import DeploymentSettings
from pipeskit.stack_outputs import DEPLOYMENT_OUTPUTS


def test_demo_definitions_load_as_a_code_location() -> None:
    from dagster import Definitions

    from orchestration.definitions import defs

    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric", "daily_order_totals"
    }  # fmt: skip


def test_the_backfill_asset_runs_a_range_of_30_days_in_one_run() -> None:
    from dagster import BackfillPolicy

    from orchestration.definitions import BACKFILL_PARTITIONS, daily_order_totals

    keys = BACKFILL_PARTITIONS.get_partition_keys()
    assert (len(keys), keys[0], keys[-1]) == (30, "2026-10-01", "2026-10-30")
    assert daily_order_totals.partitions_def == BACKFILL_PARTITIONS
    assert daily_order_totals.backfill_policy == BackfillPolicy.single_run()


def test_the_demo_port_comes_from_the_flag_else_the_environment() -> None:
    parser = build_parser()
    unset = parser.parse_args([]).port
    assert unset is None
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=unset).port == 4600
    flagged = parser.parse_args(["--port", "4700"]).port
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=flagged).port == 4700


def test_dagster_gets_every_deployment_setting_from_the_stack_outputs() -> None:
    outputs = {output: f"value-of-{output}" for output in vars(OutputNames).values() if isinstance(output, str)}
    env = deployment_env(outputs)
    assert set(DEPLOYMENT_OUTPUTS) == set(DeploymentSettings.env_vars()) - {"stack_name"}, (
        "every deployment setting but the stack itself has its output"
    )
    assert env["PIPESKIT_WORK_QUEUE_URL"] == f"value-of-{OutputNames.WORK_QUEUE_URL}"
    assert DeploymentSettings.from_env(env).dead_letter_queue_url == f"value-of-{OutputNames.DEAD_LETTER_QUEUE_URL}"


def test_the_summary_prints_the_backfill_figures(capsys: pytest.CaptureFixture[str]) -> None:
    days = [f"2026-10-{d:02d}" for d in range(1, 4)]
    backfill = BackfillReport(
        asset="daily_order_totals", first=days[0], last=days[-1], requested=days, partitions=[*days, days[1]],
        run_ids={"r1"}, figures={"items": 3, "succeeded": 3, "failed": 0, "duplicates_absorbed": 2, "wall_s": 1.5,
                                 "items_per_s": 2.0},
    )  # fmt: skip
    print_summary(DemoReport(endpoint="http://localhost:4566", backfill=backfill))
    out = capsys.readouterr().out
    assert "Fan-out backfill" in out
    assert "[2026-10-01...2026-10-03]: 3 of 3 partitions materialized, 1 of them more than once, in 1 run" in out
    assert "items 3 · succeeded 3 · failed 0 · wall 1.5 s · 2.0 items/s · duplicates absorbed 2" in out
