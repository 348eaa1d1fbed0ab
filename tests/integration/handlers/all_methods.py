"""Every Pipes method, through the kit's decorator; returns a value and its environment's id."""

import uuid

from pipeskit_lambda import pipes_handler

COUNTER = {"invocations": 0}
ENVIRONMENT = uuid.uuid4().hex  # one per execution environment

EVERY_METADATA_TYPE = {
    "inferred": {"raw_value": {"nested": [1, 2]}, "type": "__infer__"},
    "text": {"raw_value": "hello", "type": "text"},
    "url": {"raw_value": "https://example.com/a", "type": "url"},
    "path": {"raw_value": "/data/out.parquet", "type": "path"},
    "notebook": {"raw_value": "/notebooks/a.ipynb", "type": "notebook"},
    "json": {"raw_value": {"a": [1, 2, {"b": None}]}, "type": "json"},
    "md": {"raw_value": "# Title\n\n*bold*", "type": "md"},
    "float": {"raw_value": 1.5, "type": "float"},
    "int": {"raw_value": 42, "type": "int"},
    "bool": {"raw_value": True, "type": "bool"},
    "dagster_run": {"raw_value": "3f7c1bb3-7a5b-4a5e-9e4e-2f2b3a7a0c11", "type": "dagster_run"},
    "asset": {"raw_value": "upstream/table", "type": "asset"},
    "null": {"raw_value": None, "type": "null"},
    "timestamp": {"raw_value": 1763700000.5, "type": "timestamp"},
    "table_schema": {
        "raw_value": {"columns": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}]},
        "type": "table_schema",
    },
    "table": {
        "raw_value": {
            "schema": [{"name": "id", "type": "int"}],
            "records": [{"id": 1}, {"id": 2}],
        },
        "type": "table",
    },
}


@pipes_handler
def handler(event, context, pipes):
    COUNTER["invocations"] += 1
    if pipes is None:
        return {"plain": True, "invocations": COUNTER["invocations"]}
    for level in ("debug", "info", "warning", "error", "critical"):
        getattr(pipes.log, level)(f"{level} from lambda")
    pipes.report_asset_materialization(metadata=EVERY_METADATA_TYPE, data_version="v1")
    pipes.report_asset_check(check_name="passes", passed=True, metadata={"n": {"raw_value": 1, "type": "int"}})
    pipes.report_asset_check(check_name="fails", passed=False, severity="WARN")
    pipes.report_custom_message({"custom": [1, 2, 3], "request": context.aws_request_id})
    return {
        "environment": ENVIRONMENT,
        "invocations": COUNTER["invocations"],
        "partition_key": pipes.partition_key if pipes.is_partition_step else None,
        "extras": pipes.extras,
    }
