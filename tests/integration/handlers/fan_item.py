"""One fan-out item per invocation (transport="invoke"): sleeps if asked, reports, returns its id; an
item with ``fail`` raises after reporting."""

import time

from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda.protocol import ITEM_KEY


def lambda_handler(event, _context):
    item = event[ITEM_KEY]
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        time.sleep(float(item.get("sleep_s", 0)))
        pipes.report_asset_materialization(metadata={"item": {"raw_value": item["id"], "type": "text"}})
        if item.get("fail"):
            raise ValueError(f"item {item['id']} fails")
    return {"id": item["id"]}
