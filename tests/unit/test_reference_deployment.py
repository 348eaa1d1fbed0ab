"""The reference deployment's Dagster code location loads."""


def test_demo_definitions_load_as_a_code_location() -> None:
    from dagster import Definitions

    from orchestration.definitions import defs

    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"daily_orders_summary", "orders_emea_summary", "orders_apac_summary", "docs_style_metric"}
