"""Consumes the work queue: an ordinary Pipes handler, one fan-out item per call.

The kit's entrypoint recognises an SQS event of fan-out work items, runs each record as its own
Pipes session with this handler, and reports the records that failed (``ReportBatchItemFailures``):
one failing item never fails its batch-mates; SQS delivers it again, and after ``maxReceiveCount``
deliveries it goes to the dead-letter queue, where the orchestrator reports it as failed. The same
handler would serve ``run()`` and asynchronous invokes.

Here an item is a day: the day's synthetic orders are totalled and reported as the materialization
of that day's partition (the reference deployment's ``daily_order_totals`` backfills its 30 days
in one run, one item per partition).
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from dagster_pipes import PipesMappingParamsLoader, open_dagster_pipes

from pipeskit_lambda.protocol import ITEM_KEY

logger = Logger()

REGIONS = ("emea", "amer", "apac")


def day_totals(day: str) -> dict[str, Any]:
    """The totals of one day's synthetic orders (the same orders for the same day, every time)."""
    rng = random.Random(int(hashlib.sha256(day.encode()).hexdigest()[:12], 16))
    orders = [(rng.choice(REGIONS), round(rng.uniform(5, 500), 2)) for _ in range(rng.randint(150, 300))]
    amounts = [amount for _, amount in orders]
    by_region = Counter(region for region, _ in orders)
    return {
        "day": day,
        "orders": len(orders),
        "revenue": round(sum(amounts), 2),
        "mean_amount": round(statistics.fmean(amounts), 2),
        "top_region": by_region.most_common(1)[0][0],
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    """One work item: a day of orders totalled (the day is the item's partition key, else the item)."""
    with open_dagster_pipes(params_loader=PipesMappingParamsLoader(event)) as pipes:
        day = pipes.partition_key if pipes.is_partition_step else str(event[ITEM_KEY])
        totals = day_totals(day)
        pipes.log.info(f"totalled {totals['orders']} orders for {day}")
        logger.info("totalled", day=day, orders=totals["orders"])
        pipes.report_asset_materialization(
            metadata={
                "orders": {"raw_value": totals["orders"], "type": "int"},
                "revenue": {"raw_value": totals["revenue"], "type": "float"},
                "mean_amount": {"raw_value": totals["mean_amount"], "type": "float"},
                "top_region": {"raw_value": totals["top_region"], "type": "text"},
            },
            data_version=hashlib.sha256(repr(sorted(totals.items())).encode()).hexdigest()[:16],
        )
    return totals
