"""Docs-style (no kit code): reports its own id as a custom message and a materialization, returns it."""

import time

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        time.sleep(float(event.get("sleep_s", 0)))
        pipes.report_custom_message({"id": event["id"]})
        pipes.log.info(f"reporting {event['id']}")
        pipes.report_asset_materialization(
            asset_key=event.get("asset_key") or pipes.asset_key,
            metadata={"id": {"raw_value": event["id"], "type": "text"}},
        )
    return {"id": event["id"]}
