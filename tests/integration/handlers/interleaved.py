"""Docs-style: ordinary lines interleaved with custom messages, a Pipes log message, then more lines."""

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        for i in range(event["lines"]):
            print(f"before {i}", flush=True)
            pipes.report_custom_message({"i": i})
        pipes.log.info("the pipes log message")
        for i in range(event["lines"]):
            print(f"after {i}", flush=True)
        pipes.report_asset_materialization(metadata={"lines": {"raw_value": event["lines"], "type": "int"}})
