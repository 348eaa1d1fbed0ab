"""Summarize a small orders dataset and report it to Dagster through Pipes.

Written with the kit's ``pipes_handler`` (from the pipes layer) and Powertools. It builds a
deterministic dataset for the partition in scope (or the ``day`` in the event), reports one
materialization per asset in scope with several metadata types (a regional asset: its region's
orders), runs each asset's check, and returns the summary to the orchestrator.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from dagster_pipes import PipesContext

from pipeskit_lambda import pipes_handler

logger = Logger()

REGIONS = ("emea", "amer", "apac")


def make_orders(day: str, rows: int) -> list[dict[str, Any]]:
    """The same synthetic orders for the same day, every time."""
    rng = random.Random(int(hashlib.sha256(day.encode()).hexdigest()[:12], 16))
    return [
        {"order_id": f"{day}-{i:05d}", "region": rng.choice(REGIONS), "amount": round(rng.uniform(5, 500), 2)}
        for i in range(rows)
    ]


def summarize(orders: list[dict[str, Any]]) -> dict[str, Any]:
    amounts = [o["amount"] for o in orders]
    by_region = {r: sum(1 for o in orders if o["region"] == r) for r in REGIONS}
    return {
        "rows": len(orders),
        "total_amount": round(sum(amounts), 2),
        "mean_amount": round(statistics.fmean(amounts), 2) if amounts else 0.0,
        "max_amount": max(amounts, default=0.0),
        "orders_by_region": by_region,
        "negative_amounts": sum(1 for a in amounts if a < 0),
    }


def region_of(asset_key: str) -> str | None:
    """The region an asset is about (``orders_emea_summary`` → ``emea``), or None for all of them."""
    return next((region for region in REGIONS if f"_{region}_" in f"_{asset_key}_"), None)


def report(pipes: PipesContext, asset_key: str, day: str, summary: dict[str, Any]) -> None:
    by_region = summary["orders_by_region"]
    pipes.report_asset_materialization(
        asset_key=asset_key,
        metadata={
            "rows": {"raw_value": summary["rows"], "type": "int"},
            "mean_amount": {"raw_value": summary["mean_amount"], "type": "float"},
            "day": {"raw_value": day, "type": "text"},
            "orders_by_region": {"raw_value": by_region, "type": "json"},
            "report": {
                "raw_value": "| region | orders |\n|---|---|\n"
                + "\n".join(f"| {r} | {n} |" for r, n in by_region.items()),
                "type": "md",
            },
            "complete": {"raw_value": summary["rows"] > 0, "type": "bool"},
            "computed_at": {"raw_value": datetime.now(UTC).timestamp(), "type": "timestamp"},
            "source": {"raw_value": "https://example.com/orders", "type": "url"},
        },
        data_version=hashlib.sha256(repr(sorted(summary.items())).encode()).hexdigest()[:16],
    )


@pipes_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext, pipes: PipesContext | None) -> dict[str, Any]:
    """Build, summarize and report; without Pipes, just return the summary."""
    day = event.get("day") or (pipes.partition_key if pipes and pipes.is_partition_step else None) or "2026-11-01"
    orders = make_orders(day, int(event.get("rows", 1000)))
    summary = summarize(orders)
    logger.info("summarized orders", extra={"day": day, "rows": summary["rows"]})
    if pipes is None:
        return summary
    pipes.log.info(f"summarized {summary['rows']} orders for {day}")
    # Each asset in scope gets its own figures (a regional asset, its region's orders) and its own check.
    for asset_key in pipes.asset_keys:
        region = region_of(asset_key)
        own = summary if region is None else summarize([o for o in orders if o["region"] == region])
        report(pipes, asset_key, day, own)
        pipes.report_asset_check(
            asset_key=asset_key,
            check_name="amounts_are_positive",
            passed=own["negative_amounts"] == 0,
            severity="ERROR",
            metadata={"negative_amounts": {"raw_value": own["negative_amounts"], "type": "int"}},
        )
    return summary
