"""Docs-style (no kit code): reports, works for a while, reports again; many messages on request."""

import time

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes


def lambda_handler(event, _context):
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        pipes.log.info("early message")
        time.sleep(float(event.get("work_s", 0)))
        for i in range(int(event.get("messages", 0))):
            pipes.report_custom_message(i)
        pipes.log.info("late message")
        sent = int(event.get("messages", 0))
        pipes.report_asset_materialization(metadata={"sent": {"raw_value": sent, "type": "int"}})
    return {"done": True}
