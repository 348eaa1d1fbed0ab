"""Consumes the work queue: each SQS record is one item of a fan-out, run as its own Pipes session.

Powertools' batch processing reports failed records (``ReportBatchItemFailures``), so one failing
item never fails its batch-mates: SQS delivers it again, and after ``maxReceiveCount`` deliveries it
goes to the dead-letter queue, where the orchestrator reports it as failed.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda import run_invocation
from pipeskit_lambda.protocol import ITEM_KEY

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def process_item(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """One work item: here, a day of orders summarized (the item is the day, e.g. a partition key)."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        day = str(event[ITEM_KEY])
        rows = 100 + sum(ord(c) for c in day) % 50
        pipes.log.info(f"summarizing {day}")
        pipes.report_asset_materialization(metadata={"rows": {"raw_value": rows, "type": "int"}})
    return {"day": day, "rows": rows}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run each record's item as its own session; report the records that failed."""

    def record_handler(record: SQSRecord) -> Any:
        return run_invocation(process_item, json.loads(record.body), context)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
