"""Consumes the work queue: an ordinary Pipes handler, one fan-out item per call.

The kit's entrypoint recognises an SQS event of fan-out work items, runs each record as its own
Pipes session with this handler, and reports the records that failed (``ReportBatchItemFailures``):
one failing item never fails its batch-mates; SQS delivers it again, and after ``maxReceiveCount``
deliveries it goes to the dead-letter queue, where the orchestrator reports it as failed. The same
handler would serve ``run()`` and asynchronous invokes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda.protocol import ITEM_KEY

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """One work item: here, a day of orders summarized (the item is the day, e.g. a partition key)."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        day = str(event[ITEM_KEY])
        rows = 100 + sum(ord(c) for c in day) % 50
        pipes.log.info(f"summarizing {day}")
        logger.info("summarized", day=day, rows=rows)
        pipes.report_asset_materialization(metadata={"rows": {"raw_value": rows, "type": "int"}})
    return {"day": day, "rows": rows}
