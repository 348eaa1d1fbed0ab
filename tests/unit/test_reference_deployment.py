"""The reference deployment: its Dagster code location loads; its demo takes the local AWS's port."""

from infra.demo import build_parser
from pipeskit.local.settings import LocalAWSSettings


def test_demo_definitions_load_as_a_code_location() -> None:
    from dagster import Definitions

    from orchestration.definitions import defs

    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric"}


def test_the_demo_port_comes_from_the_flag_else_the_environment() -> None:
    parser = build_parser()
    unset = parser.parse_args([]).port
    assert unset is None
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=unset).port == 4600
    flagged = parser.parse_args(["--port", "4700"]).port
    assert LocalAWSSettings.from_env({"PIPESKIT_LOCAL_PORT": "4600"}, port=flagged).port == 4700
